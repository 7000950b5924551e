import logging
import random
from functools import partial

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.dataset import worker_init_fn
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log

# Streams of SeedSequence entropy, so that epoch and iteration seeds and
# worker seeds never coincide.
_EPOCH, _ITER, _WORKERS = 0, 1, 2


def derived_seed(seed: int, stream: int, step: int) -> int:
    """A 32-bit seed that depends only on ``(seed, stream, step)``."""
    return int(np.random.SeedSequence([seed, stream, step]).generate_state(
        1)[0])


@HOOKS.register_module()
class ResumableRandomnessHook(Hook):
    """Make training's random draws a function of the position in
    training, so that ``--resume`` continues exactly.

    mmengine checkpoints weights, optimizer, schedulers and the seed, but
    not the state of the random generators: a resumed run re-seeds at
    start-up, so from the resume point it draws other dropout masks (torch)
    and other clip positions and augmentations (numpy and ``random`` in
    the data pipeline) than the uninterrupted run did, and ends with other
    weights. This hook re-seeds from ``(runner.seed, epoch)`` at every
    epoch start (numpy, ``random``, torch) and torch from
    ``(runner.seed, iteration)`` before every iteration, so a draw depends
    only on where in training it happens, never on what ran before (the
    interrupted epoch, validation, data-loader start-up):

    - data pipelines in the main process (``num_workers=0``): their
      generators restart with each epoch;
    - data-loader workers that start with each epoch
      (``persistent_workers=False``): mmengine seeds them alike in every
      epoch; here with a seed per epoch, so augmentations also differ from
      epoch to epoch;
    - persistent workers keep their generators across epochs, which a new
      process cannot reproduce: epoch-based runs that resume with them
      get other augmentations after the resume point (a warning says so).
      Iteration-based runs do not have this problem: on resume mmengine
      replays the data loader from the first iteration, workers and all
      (only a ``num_workers=0`` pipeline that draws from torch, not numpy,
      would see other draws);
    - the model's own draws (dropout) are seeded per iteration.

    With ``diff_rank_seed`` the runner's seed differs per rank, and so do
    the derived seeds. The streams differ from those of a run without the
    hook, not their randomness.
    """

    # Before every other hook of the same stage: the draws of all hooks
    # and of the iteration come from the re-seeded generators.
    priority = 'HIGHEST'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if getattr(loader, 'persistent_workers', False):
            print_log(
                'ResumableRandomnessHook: the train dataloader has '
                'persistent_workers=True; after an epoch-based --resume '
                'its workers draw other augmentations than an '
                'uninterrupted run (set persistent_workers=False for an '
                'exact resume)',
                logger='current',
                level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        seed = derived_seed(runner.seed, _EPOCH, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        loader = runner.train_dataloader
        if getattr(loader, 'num_workers', 0) > 0:
            # Used by workers that start from now on (every epoch's,
            # unless persistent).
            loader.worker_init_fn = partial(
                worker_init_fn,
                num_workers=loader.num_workers,
                rank=get_rank(),
                seed=derived_seed(runner.seed, _WORKERS, runner.epoch))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        torch.manual_seed(derived_seed(runner.seed, _ITER, runner.iter))
