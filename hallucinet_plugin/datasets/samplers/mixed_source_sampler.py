import math
from typing import Iterator, List, Optional, Sequence

import numpy as np
from mmaction.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class MixedSourceSampler(Sampler):
    """Batches that mix the sources of a ``ConcatDataset`` in a fixed ratio.

    In the spirit of mmdetection's ``MultiSourceSampler`` (``source_ratio``),
    for epoch-based training too: every batch of every process holds
    ``num_per_source[s]`` samples of source ``s`` (``batch_size`` split in
    ``source_ratio``), in source order. The first source (the labelled
    videos) sets the epoch: each of its samples comes once per epoch, in a
    new order every epoch, the last batches filled from the start of the
    epoch's order as mmengine's ``DefaultSampler`` rounds up. The other
    sources (the unlabelled videos) are endless streams of fresh
    permutations: an epoch takes the next stretch of each, so over epochs
    every unlabelled sample is used equally often.

    Deterministic and resumable: the indices of epoch ``e`` depend only on
    ``(seed, e)`` and the world size, never on earlier iterations, so a run
    resumed at an epoch (or replayed to an iteration by mmengine's
    iteration-based loop) draws what an uninterrupted run draws. Under DDP
    (``world_size`` processes) each global step's ``world_size`` batches
    take disjoint, consecutive stretches of every source's order: no sample
    is seen twice in a step, and rank ``r`` gets the ``r``-th stretch.

    The data loader's ``batch_size`` must equal ``batch_size`` here (the
    sampler yields whole batches, one after the other):
    ``tools/train.py --unlabelled`` sets both.

    Args:
        dataset (ConcatDataset): The sources, labelled first.
        batch_size (int): Samples per batch and process.
        source_ratio (Sequence[int]): Relative share of each source in a
            batch, e.g. ``(1, 2)``: a third labelled, two thirds unlabelled.
            Every source gets at least one sample per batch.
        shuffle (bool): New orders every epoch; False takes every source in
            order (the unlabelled ones continuing where the previous epoch
            stopped).
        seed (int, optional): Shared by all processes; None draws one and
            synchronises it across processes, as ``DefaultSampler``.
    """

    def __init__(self,
                 dataset,
                 batch_size: int,
                 source_ratio: Sequence[int] = (1, 1),
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        sizes = [len(d) for d in getattr(dataset, 'datasets', ())]
        if len(sizes) < 2:
            raise TypeError(
                'MixedSourceSampler needs a ConcatDataset of two or more '
                f'sources (labelled first), got {type(dataset).__name__}')
        if len(source_ratio) != len(sizes):
            raise ValueError(
                f'source_ratio {list(source_ratio)} has {len(source_ratio)} '
                f'entries for {len(sizes)} sources')
        if any(not isinstance(r, (int, float)) or r <= 0
               for r in source_ratio):
            raise ValueError(f'source_ratio must be positive, got '
                             f'{list(source_ratio)}')
        if 0 in sizes:
            raise ValueError(f'MixedSourceSampler: a source is empty '
                             f'(sizes {sizes})')
        total = sum(source_ratio)
        num_per_source = [
            int(batch_size * r / total) for r in source_ratio[1:]
        ]
        num_per_source.insert(0, batch_size - sum(num_per_source))
        if min(num_per_source) < 1:
            raise ValueError(
                f'batch_size={batch_size} is too small for source_ratio '
                f'{list(source_ratio)}: it gives {num_per_source} samples '
                'per source; every source needs at least one per batch')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.source_ratio = list(source_ratio)
        self.num_per_source = num_per_source
        self.sizes = sizes
        self.offsets = np.cumsum([0] + sizes[:-1]).tolist()
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        # Batches per process and epoch: the first source once.
        self.num_batches = math.ceil(sizes[0] /
                                     (num_per_source[0] * self.world_size))
        per_epoch = [
            n * self.num_batches * self.world_size for n in num_per_source
        ]
        print_log(
            'MixedSourceSampler: batches of ' + ' + '.join(
                f'{n} of source {s} ({size} samples)'
                for s, (n, size) in enumerate(zip(num_per_source, sizes))) +
            f'; an epoch is {self.num_batches} batches per process '
            f'({self.world_size} processes), {per_epoch} samples per '
            'source',
            logger='current')

    def _order(self, source: int, chunk: int) -> np.ndarray:
        """The ``chunk``-th order of a source's indices."""
        size = self.sizes[source]
        if not self.shuffle:
            return np.arange(size)
        # SeedSequence entropy must be non-negative.
        rng = np.random.default_rng([self.seed % 2**32, source, chunk])
        return rng.permutation(size)

    def _stream(self, source: int, start: int, length: int) -> np.ndarray:
        """Positions ``[start, start + length)`` of a source's stream of
        orders (one order per pass over the source)."""
        size = self.sizes[source]
        first, last = start // size, (start + length - 1) // size
        stream = np.concatenate(
            [self._order(source, c) for c in range(first, last + 1)])
        begin = start - first * size
        return stream[begin:begin + length]

    def _epoch_indices(self, source: int) -> np.ndarray:
        """The source's indices of this epoch, over all processes."""
        length = self.num_per_source[source] * self.num_batches * \
            self.world_size
        if source == 0:
            # The epoch's own order, rounded up by repeating it.
            order = self._order(0, self.epoch)
            return np.resize(order, length)
        return self._stream(source, self.epoch * length, length)

    def __iter__(self) -> Iterator[int]:
        # [num_batches * world_size * n] -> [num_batches, world_size, n]:
        # step j, rank r takes the r-th stretch of step j's samples.
        parts: List[np.ndarray] = [
            self._epoch_indices(s).reshape(self.num_batches,
                                           self.world_size, n)[:, self.rank]
            + self.offsets[s] for s, n in enumerate(self.num_per_source)
        ]
        # [num_batches, batch_size], sources in order within a batch.
        batches = np.concatenate(parts, axis=1)
        return iter(batches.reshape(-1).tolist())

    def __len__(self) -> int:
        """Samples per process and epoch."""
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Use the orders of ``epoch`` (called by the training loop)."""
        self.epoch = epoch
