"""Flow of many videos: video lists, folders, a process pool, resumable
(see :mod:`hallucinet_plugin.converters.flow` for the layout)."""
import multiprocessing
import os
import os.path as osp
import sys
import warnings
from pathlib import Path
from typing import (
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import cv2
import numpy as np
from mmengine.utils import ProgressBar

from ..datasets.transforms.load_flow_clips import (
    FLOW_TMPL,
    RGB_TMPL,
)
from ..utils.typing_utils import PathLike
from .flow import (
    VIDEO_EXTENSIONS,
    BadVideoError,
    VideoFlowResult,
    VideoItem,
    create_flow_estimator,
    extract_video_flow,
    quantize_flow,
)


def load_video_list(ann_file: PathLike,
                    data_prefix: PathLike = '') -> List[VideoItem]:
    """Read an mmaction2 video annotation file (``VideoDataset`` format).

    Each non-empty line is ``<video path> [label ...]`` with the path
    relative to ``data_prefix``. A video's output key is its path without
    the extension, so ``class/vid.mp4`` is extracted to ``class/vid/``;
    an absolute path is keyed by its file stem alone.

    Args:
        ann_file (str | PathLike): The annotation file.
        data_prefix (str | PathLike): Folder the video paths are relative
            to.

    Returns:
        list[VideoItem]: The videos in file order.
    """
    ann_file = str(ann_file)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Video list not found: {ann_file}')
    items = []
    with open(ann_file) as f:
        for line in f:
            tokens = line.split()
            if not tokens:
                continue
            rel = tokens[0]
            # An absolute path ignores data_prefix (as in VideoDataset's
            # osp.join) and cannot be mirrored under out_root: key by stem.
            key = osp.splitext(osp.basename(rel) if osp.isabs(rel) else rel)
            items.append(
                VideoItem(
                    path=osp.join(str(data_prefix), rel),
                    key=key[0],
                    labels=tokens[1:]))
    if not items:
        raise ValueError(f'Video list {ann_file} has no entries.')
    return items


def scan_video_dir(video_dir: PathLike) -> List[VideoItem]:
    """Find the videos under a folder, recursively, in sorted order.

    Args:
        video_dir (str | PathLike): Folder to search for files with a
            suffix in ``VIDEO_EXTENSIONS``.

    Returns:
        list[VideoItem]: Unlabelled videos keyed by their relative path
        without extension.
    """
    root = Path(video_dir)
    paths = sorted(p for p in root.rglob('*')
                   if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not paths:
        raise ValueError(f'No videos ({", ".join(VIDEO_EXTENSIONS)}) found '
                         f'under {video_dir}.')
    return [
        VideoItem(path=str(p), key=p.relative_to(root).with_suffix(
            '').as_posix()) for p in paths
    ]


def _collect_videos(videos: Union[PathLike, Sequence[PathLike]],
                    data_prefix: PathLike) -> List[VideoItem]:
    if isinstance(videos, (str, os.PathLike)):
        if osp.isdir(videos):
            items = scan_video_dir(videos)
        elif osp.isfile(videos):
            items = load_video_list(videos, data_prefix)
        else:
            raise FileNotFoundError(
                f'Neither a video list file nor a folder: {videos}')
    else:
        items = [
            VideoItem(path=str(p), key=Path(p).stem) for p in videos
        ]
    seen: Dict[str, str] = {}
    for item in items:
        key = osp.normpath(item.key)
        if key.startswith('..') or osp.isabs(key):
            raise ValueError(f'Video {item.path} would be written outside '
                             f'the output folder (key {item.key!r}).')
        if key in seen:
            raise ValueError(f'Videos {seen[key]} and {item.path} would both '
                             f'be extracted to the folder {item.key!r}.')
        seen[key] = item.path
    return items


def _worker_context() -> multiprocessing.context.BaseContext:
    """A start method that never forks a process with live threads.

    Plain ``fork`` copies OpenCV's thread pool state from a parent that
    has already computed flow (e.g. the caller ran
    :func:`compute_tvl1_flow`), and the children then deadlock inside
    ``cv2.setNumThreads``. The fork server is a fresh process, so children
    forked from it start clean. It preloads this module when the plugin is
    importable from the environment (installed, or on ``PYTHONPATH``);
    otherwise, as CPython 3.11's fork server ignores the parent's runtime
    ``sys.path``, each worker imports the plugin itself once.
    """
    if 'forkserver' not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('spawn')
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload([__name__])
    return ctx


def _init_worker() -> None:
    # Parallelism is across videos; OpenCV's own thread pool per process
    # would oversubscribe the cores.
    cv2.setNumThreads(1)


def _extract_task(task: Tuple[int, str, str, Dict]) -> Tuple:
    """Pool entry: returns (index, result or None, error message or None)."""
    index, video_path, out_dir, kwargs = task
    try:
        return index, extract_video_flow(video_path, out_dir, **kwargs), None
    except BadVideoError as e:
        return index, None, str(e)


def extract_flow(videos: Union[PathLike, Sequence[PathLike]],
                 out_root: PathLike,
                 data_prefix: PathLike = '',
                 workers: int = 1,
                 bound: float = 20.,
                 new_short: Optional[int] = None,
                 also_rgb: bool = False,
                 method: str = 'tvl1',
                 flow_tmpl: str = FLOW_TMPL,
                 rgb_tmpl: str = RGB_TMPL,
                 jpeg_quality: int = 95,
                 skip_bad: bool = False,
                 out_list: Optional[PathLike] = None,
                 progress: bool = True) -> Dict:
    """Extract flow for many videos in parallel, resumably.

    Args:
        videos (str | PathLike | Sequence): An mmaction2 video annotation
            file (paths relative to ``data_prefix``), a folder searched for
            videos, or a sequence of video paths (keyed by file stem).
        out_root (str | PathLike): Root of the per-video folders.
        data_prefix (str | PathLike): Prefix for the annotation file paths.
        workers (int): Worker processes; 1 runs in this process.
        bound (float): Flow quantisation bound in pixels.
        new_short (int, optional): Short-side resize before flow.
        also_rgb (bool): Also write RGB frames.
        method (str): ``'tvl1'``, ``'dis'`` or ``'farneback'``.
        flow_tmpl (str): Flow file template (``RawframeDataset``
            ``filename_tmpl`` for ``modality='Flow'``).
        rgb_tmpl (str): RGB file template.
        jpeg_quality (int): JPEG quality, 0-100.
        skip_bad (bool): Warn about missing/corrupt/too-short videos and
            leave them out instead of raising.
        out_list (str | PathLike, optional): Write a ``RawframeDataset``
            annotation file, one ``<frame_dir> <total_frames> [label ...]``
            line per extracted video in input order, ``frame_dir`` relative
            to ``out_root`` and ``total_frames`` the flow count.
        progress (bool): Show a progress bar with rate and ETA.

    Returns:
        dict: ``num_videos``, ``processed`` and ``skipped`` (reused
        finished folders) counts, ``failed`` as ``[(path, reason)]``, and
        ``entries`` as ``[(frame_dir, total_frames, labels)]``.

    Raises:
        BadVideoError: Naming the first bad video, unless ``skip_bad``.
    """
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}.')
    items = _collect_videos(videos, data_prefix)
    kwargs = dict(
        bound=bound,
        new_short=new_short,
        also_rgb=also_rgb,
        method=method,
        flow_tmpl=flow_tmpl,
        rgb_tmpl=rgb_tmpl,
        jpeg_quality=jpeg_quality)
    # Fail on bad settings here, not once per worker.
    quantize_flow(np.zeros(1), bound)
    if new_short is not None and new_short <= 0:
        raise ValueError(f'new_short must be positive, got {new_short}.')
    create_flow_estimator(method)

    tasks = [(i, item.path, osp.join(str(out_root), item.key), kwargs)
             for i, item in enumerate(items)]
    results: List[Optional[VideoFlowResult]] = [None] * len(items)
    failed = []
    # mmengine's bar shows videos/s, elapsed time and ETA; stderr keeps
    # stdout for results.
    bar = ProgressBar(len(tasks), file=sys.stderr) if progress else None
    pool = None
    try:
        if workers == 1:
            outputs = map(_extract_task, tasks)
        else:
            pool = _worker_context().Pool(
                min(workers, len(tasks)), initializer=_init_worker)
            outputs = pool.imap_unordered(_extract_task, tasks)
        for index, result, error in outputs:
            if bar is not None:
                bar.update()
            if error is not None:
                if not skip_bad:
                    raise BadVideoError(error)
                failed.append((items[index].path, error))
            results[index] = result
    finally:
        if bar is not None:
            sys.stderr.write('\n')
        if pool is not None:
            pool.terminate()
            pool.join()

    if failed:
        listing = '; '.join(reason for _, reason in failed)
        warnings.warn(f'Skipped {len(failed)} of {len(items)} bad videos: '
                      f'{listing}')
    entries = [(item.key, res.total_frames, item.labels)
               for item, res in zip(items, results) if res is not None]
    if out_list is not None:
        out_parent = osp.dirname(osp.abspath(str(out_list)))
        os.makedirs(out_parent, exist_ok=True)
        with open(out_list, 'w') as f:
            for key, total, labels in entries:
                f.write(' '.join([key, str(total), *labels]) + '\n')
    done = [r for r in results if r is not None]
    return dict(
        num_videos=len(items),
        processed=sum(not r.skipped for r in done),
        skipped=sum(r.skipped for r in done),
        failed=failed,
        entries=entries)
