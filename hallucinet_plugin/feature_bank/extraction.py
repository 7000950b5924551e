"""Extraction: the frozen teacher run once over every window of every
video of a config, into the store."""
import logging
import math
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..utils.config import load_config, to_builtin
from ..utils.typing_utils import PathLike
from .geometry import window_starts
from .store import video_key
from .switch import bank_settings, sha256_file
from .writer import FeatureBankWriter


# --------------------------------------------------------------- teacher
def build_frozen_teacher(model_cfg: Dict, settings: Dict) -> nn.Module:
    """The :class:`FrozenTeacher` of a HalluciNet config, without its
    student (building the whole HalluciNet would also build, and possibly
    download, the student). Online target and bank come from the same
    module.

    Args:
        model_cfg (dict): ``cfg.model`` of an online-teacher config.
        settings (dict): Its :func:`bank_settings`.
    """
    # By registry: the models sit above the feature bank's layer.
    return MODELS.build(
        dict(model_cfg['teacher'],
             layer=settings['teacher_layer'],
             pool=settings['teacher_pool']))


def _leaf_datasets(dataset) -> List:
    if hasattr(dataset, 'datasets'):
        return [d for ds in dataset.datasets for d in _leaf_datasets(ds)]
    if hasattr(dataset, 'dataset'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


def _empty_pipelines(dataset: Dict) -> Dict:
    """A dataset config whose (nested) pipelines are empty: only the
    annotations are needed."""
    dataset = dict(dataset)
    if 'pipeline' in dataset:
        dataset['pipeline'] = []
    if 'dataset' in dataset:
        dataset['dataset'] = _empty_pipelines(dataset['dataset'])
    if 'datasets' in dataset:
        dataset['datasets'] = [
            _empty_pipelines(d) for d in dataset['datasets']
        ]
    return dataset


def collect_videos(cfg: Union[PathLike, Config],
                   splits: Sequence[str] = ('train', )
                   ) -> Tuple[List[Tuple[str, str]], List[str]]:
    """The videos of a config's splits, deduplicated, in dataset order.

    Args:
        cfg (str | Config): The config.
        splits (Sequence[str]): Names of ``<split>_dataloader`` entries.

    Returns:
        tuple: ``[(key, filename)]`` and the datasets' video data prefixes.
    """
    cfg = load_config(cfg)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    videos: Dict[str, str] = {}
    prefixes = set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader is None or 'dataset' not in loader:
            raise KeyError(f'{cfg.filename}: no {split}_dataloader.dataset '
                           f'for split {split!r}')
        dataset = DATASETS.build(
            _empty_pipelines(to_builtin(loader['dataset'])))
        for leaf in _leaf_datasets(dataset):
            data_prefix = getattr(leaf, 'data_prefix', None) or {}
            if not data_prefix.get('video') and data_prefix.get('img'):
                raise ValueError(
                    f'{split} dataset {type(leaf).__name__} reads frame '
                    'folders (data_prefix.img); the teacher bank decodes '
                    'videos (data_prefix.video)')
            prefix = data_prefix.get('video') or ''
            prefix = osp.normpath(prefix) if prefix else ''
            prefixes.add(prefix)
            for i in range(len(leaf)):
                filename = leaf.get_data_info(i).get('filename')
                if filename is None:
                    raise KeyError(f'{split} dataset sample {i} has no '
                                   'filename (the bank needs video files)')
                key = video_key(filename, prefix)
                other = videos.setdefault(key, filename)
                if osp.abspath(other) != osp.abspath(filename):
                    raise ValueError(
                        f'two videos share the bank key {key!r}: {other} '
                        f'and {filename} (different data prefixes); '
                        'extract them into separate stores')
    return list(videos.items()), sorted(prefixes)


# ------------------------------------------------------------ extraction
class _VideoWindows(IterableDataset):
    """Decodes the teacher view of each video's windows, ``batch_size``
    windows per item, in data-loader workers (one worker per video).

    Each item: ``key``, ``chunk`` and ``num_chunks`` (its place in the
    video), ``total_frames``, ``frames`` ``(C, U, H, W)`` uint8 (the distinct
    frames of the chunk's windows, teacher view) and ``positions`` ``(B,
    T)`` (each window's frames, as indices into ``frames``).
    """

    def __init__(self, videos: Sequence[Tuple[str, str]], settings: Dict,
                 batch_size: int) -> None:
        self.videos = list(videos)
        self.pipeline = settings['_pipeline']
        self.clip_len = settings['clip_len']
        self.frame_interval = settings['frame_interval']
        self.stride = settings['stride']
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[Dict]:
        worker = get_worker_info()
        videos = self.videos
        if worker is not None:
            videos = videos[worker.id::worker.num_workers]
        for key, filename in videos:
            try:
                yield from self._video(key, filename)
            except Exception as e:
                raise RuntimeError(
                    f'{filename}: teacher-bank extraction failed: '
                    f'{type(e).__name__}: {e}') from e

    def _video(self, key: str, filename: str) -> Iterator[Dict]:
        p = self.pipeline
        results = p['init'](dict(filename=filename, start_index=0))
        reader, total = results['video_reader'], results['total_frames']
        starts = window_starts(total, self.clip_len, self.frame_interval,
                               self.stride)
        clip = np.arange(self.clip_len) * self.frame_interval
        # [W, 1] + [1, T] -> [W, T], bounded as the sampler bounds its clip.
        windows = p['sampler']._bound(starts[:, None] + clip[None], total,
                                      filename)
        num_chunks = math.ceil(len(windows) / self.batch_size)
        for chunk in range(num_chunks):
            block = windows[chunk * self.batch_size:(chunk + 1) *
                            self.batch_size]
            needed = np.unique(block)
            view = dict(results, video_reader=reader, frame_inds=needed)
            view = p['decode'](view)
            for transform in p['view']:
                view = transform(view)
            # All distinct frames as one "clip": each is resized once.
            view.update(student_inds=needed[:1], teacher_inds=needed[None])
            frames = p['split'](view)['teacher_imgs'][0]
            yield dict(
                key=key,
                chunk=chunk,
                num_chunks=num_chunks,
                total_frames=total,
                frames=torch.from_numpy(frames),
                positions=torch.from_numpy(np.searchsorted(needed, block)))


def _worker_init(worker_id: int) -> None:
    # Parallelism is across videos; one thread per worker avoids
    # oversubscribing the cores the teacher runs on.
    torch.set_num_threads(1)


def teacher_clips(frames: torch.Tensor, positions: torch.Tensor,
                  preprocessor: nn.Module) -> torch.Tensor:
    """Normalise distinct frames once, then gather the windows' clips.

    Args:
        frames (Tensor): ``(C, U, H, W)`` uint8 teacher-view frames.
        positions (Tensor): ``(B, T)`` indices into ``U``.
        preprocessor (nn.Module): The teacher view's
            ``ActionDataPreprocessor`` (per-channel, so normalising before
            gathering gives the same values as after).

    Returns:
        Tensor: ``(B, C, T, H, W)`` clips.
    """
    # [C, U, H, W] -> [1, C, U, H, W], normalised like a batch of one clip.
    x, _ = preprocessor.preprocess([frames], None, False)
    # [C, B, T, H, W] -> [B, C, T, H, W]
    return x[0][:, positions].transpose(0, 1).contiguous()


def extract_teacher_features(cfg: Union[PathLike, Config],
                             out: Optional[PathLike] = None,
                             splits: Sequence[str] = ('train', ),
                             stride: Optional[int] = None,
                             batch_size: int = 32,
                             workers: int = 2,
                             dtype: str = 'float16',
                             device: Optional[Union[str,
                                                    torch.device]] = None,
                             progress: bool = True,
                             shards: Optional[int] = None,
                             commit_every: int = 256) -> Dict:
    """Compute a config's frozen teacher over its videos, into a bank.

    Resumable: videos already committed to ``out`` are skipped. With
    ``torch.distributed`` initialised, rank ``r`` of ``w`` takes the videos
    of the store's shards ``r, r + w, ...``: every shard has one writer,
    so the ranks never wait for each other; all write into one store.

    Args:
        cfg (str | Config): An online-teacher HalluciNet config.
        out (str, optional): The store; default
            ``work_dirs/<config name>/teacher_bank.lmdb``.
        splits (Sequence[str]): Dataloaders whose videos to extract.
        stride (int, optional): Window stride (default: see module).
        batch_size (int): Windows per teacher forward.
        workers (int): Decoding worker processes.
        dtype (str): ``'float16'`` or ``'float32'`` storage.
        device (str | torch.device, optional): Default ``cuda`` when
            available (this rank's GPU), else ``cpu``.
        progress (bool): Progress bar (rank 0), with rate and ETA.
        shards (int, optional): Shards of a new store (default 8; at least
            the number of ranks that will extract into it). An existing
            store keeps its own.
        commit_every (int): Videos per commit (also every 10 s): a killed
            run redoes at most this many.

    Returns:
        dict: ``store``, ``videos`` (in the splits), ``extracted`` and
        ``skipped`` (this rank), ``windows`` (extracted by this rank),
        ``complete`` (all of the splits' videos stored).
    """
    cfg = load_config(cfg)
    if batch_size < 1 or workers < 0:
        raise ValueError('batch_size must be >= 1 and workers >= 0')
    if out is None:
        name = osp.splitext(osp.basename(cfg.filename or 'config'))[0]
        out = osp.join('work_dirs', name, 'teacher_bank.lmdb')
    out = str(out)
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(device)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())

    settings = bank_settings(cfg, stride=stride, dtype=dtype)
    videos, prefixes = collect_videos(cfg, splits)
    if not videos:
        raise ValueError(f'no videos in the splits {list(splits)}')
    settings['teacher_ckpt_sha256'] = sha256_file(settings['teacher_ckpt'])
    stored = {k: v for k, v in settings.items() if not k.startswith('_')}
    # Refuses a mismatching store before any teacher work.
    writer = FeatureBankWriter(
        out, stored, shards=shards, commit_every=commit_every)
    try:
        rank, world_size = get_dist_info()
        if world_size > writer.shards and rank == 0:
            print_log(
                f'{out} has {writer.shards} shards, fewer than the '
                f'{world_size} ranks: {world_size - writer.shards} ranks '
                'stay idle (a new store takes --shards)',
                logger='current',
                level=logging.WARNING)
        done = writer.done_keys()
        mine = set(writer.shards_of(rank, world_size))
        shard = [v for v in videos if writer.shard_of(v[0]) in mine]
        todo = [v for v in shard if v[0] not in done]
        extractor = build_frozen_teacher(cfg.model, settings).to(device)
        preprocessor = settings['_preprocessor'].to(device)
        loader = DataLoader(
            _VideoWindows(todo, settings, batch_size),
            batch_size=None,
            num_workers=min(workers, len(todo)),
            pin_memory=device.type == 'cuda',
            worker_init_fn=_worker_init)
        windows = _run(loader, extractor, preprocessor, writer, device,
                       len(todo), progress and rank == 0)
        meta = writer.finalize([k for k, _ in videos], prefixes)
    finally:
        writer.close()
    return dict(
        store=out,
        videos=len(videos),
        extracted=len(todo),
        skipped=len(shard) - len(todo),
        windows=windows,
        complete=bool(meta.get('complete')))


def _run(loader: DataLoader, extractor: nn.Module,
         preprocessor: nn.Module, writer: FeatureBankWriter,
         device: torch.device, num_videos: int, progress: bool) -> int:
    """Teacher forward per item; commit each video once all its chunks are
    done. Returns the number of windows extracted."""
    pending: Dict[str, Dict[int, torch.Tensor]] = {}
    windows = 0
    # mmengine's bar (videos/s, elapsed, ETA) on stderr, as the other
    # long jobs of the plugin.
    bar = ProgressBar(num_videos, file=sys.stderr) \
        if progress and num_videos else None
    try:
        for item in loader:
            frames = item['frames'].to(device, non_blocking=True)
            clips = teacher_clips(frames, item['positions'].to(device),
                                  preprocessor)
            # [B, C, T, H, W] -> [1, B, C, T, H, W]: one sample of B clips.
            feats = extractor(clips[None]).float()
            parts = pending.setdefault(item['key'], {})
            parts[item['chunk']] = feats.cpu()
            windows += len(feats)
            if len(parts) == item['num_chunks']:
                track = torch.cat([parts[i] for i in range(len(parts))])
                writer.put(item['key'], item['total_frames'], track.numpy())
                del pending[item['key']]
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            sys.stderr.write('\n')
    if pending:
        raise RuntimeError(f'incomplete videos after extraction: '
                           f'{sorted(pending)}')
    return windows
