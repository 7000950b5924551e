"""Teacher feature bank: the frozen teacher, computed once.

With an online teacher every HalluciNet training step decodes a
``clip_len``-frame clip per student frame and runs the 3D teacher on it, so
the 2D student trains at 3D speed. The teacher is frozen: its output depends
on the clip only. :func:`extract_teacher_features` computes it once for a
dense grid of clips of every video and stores it;
:class:`~hallucinet_plugin.datasets.transforms.LoadTeacherFeatures` then
hands each sampled segment the row of the clip that starts nearest to it,
and training decodes only the student frames.

Windows
    A video of ``n`` frames gets windows starting at frames ``0, stride,
    2 * stride, ...``: every such start whose clip (``clip_len`` frames at
    ``frame_interval``, ``span = (clip_len - 1) * frame_interval + 1``
    frames) fits, i.e. up to ``n - span``. A video shorter than a clip gets
    one window at 0 whose frames follow the sampler's ``out_of_bound_opt``,
    exactly as :class:`HalluSampleFrames` bounds its clip. Frames are
    numbered as the decoder numbers them (a sample's ``start_index`` is
    added when reading).

Default stride
    ``max(1, clip_len * frame_interval // 4)``: 4 for the paper's 16-frame
    clips. A sampled clip start is then at most ``stride // 2`` frames from
    a window (2 frames: the stored clip shares 14 of its 16 frames with the
    true one), and at most ``stride - 1`` for the few starts after a
    video's last window.

Teacher view
    Frames are decoded with the train pipeline's decoder (``DecordInit`` /
    ``DecordDecode`` and their arguments), passed through a deterministic
    version of the transforms the pipeline applies to both views before
    :class:`HalluSplitViews` (``Resize`` and ``CenterCrop`` are kept,
    ``RandomCrop`` becomes a ``CenterCrop`` of the same size, ``Flip`` is
    dropped: the bank holds one, unflipped view), resized to
    ``HalluSplitViews.teacher_scale`` and normalised with the data
    preprocessor's ``teacher`` settings. So with random shared crops or
    flips, the bank's target is that of the centre view, not of the
    student's crop. A config may set ``teacher_bank_view`` (a list of
    transforms) to replace the derived ones. The teacher itself is
    ``model.teacher`` loaded from ``model.teacher_ckpt`` by HalluciNet's own
    loading code, its output reduced by HalluciNet's own
    :meth:`~HalluciNet.extract_teacher_feat` (``teacher_layer``,
    ``teacher_pool``).

Storage: LMDB
    The bank is one LMDB environment (a folder holding ``data.mdb`` and
    ``lock.mdb``), chosen because:

    - it is memory-mapped: reads are a page-cache lookup with no
      per-read syscall or decompression, and any number of reader
      processes (data-loader workers on every rank) share the same pages;
      readers open it read-only with ``lock=False, readahead=False``
      (random access; readahead would fill the page cache with rows no
      one asked for), lazily in each worker process, after the fork;
    - writes are ACID transactions: each video's row is committed
      atomically, so an extraction killed at any point (Ctrl-C,
      ``kill -9``, out of memory) leaves only complete entries and a
      re-run computes just the missing ones; LMDB's lock also serialises
      writers from several processes, so ``torchrun`` ranks write into one
      store;
    - it is a single store, not one small file per video (kind to shared
      filesystems, one path to copy), with the metadata inside it.

    HDF5 would need one writer process, and a writer killed mid-write can
    leave the file unreadable; ``.npy`` files per video give atomic renames
    but tens of thousands of files and metadata kept elsewhere.

Layout
    - key: the video's path relative to its dataset's ``data_prefix``
      (the path written in the annotation file), UTF-8;
    - value: a 16-byte header ``<4sIII`` (magic ``b'HNB1'``, the video's
      frame count, windows, dim) followed by ``windows x dim`` little-endian
      float16 (or float32) values, row-major; row ``i`` is the clip that
      starts at frame ``i * stride``;
    - ``__meta__``: JSON metadata: the teacher config (text), the sha256 of
      the teacher checkpoint, ``clip_len``, ``frame_interval``, ``stride``,
      ``out_of_bound_opt``, ``dim``, ``dtype``, the teacher view, the data
      prefixes, the videos with their window counts, creation info.
"""
import copy
import datetime
import difflib
import hashlib
import inspect
import json
import math
import os
import os.path as osp
import socket
import struct
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import lmdb
import mmaction
import mmengine
import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.dist import get_dist_info
from mmengine.fileio import get_local_path
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from hallucinet_plugin.models.recognizers.hallucinet import (
    HalluciNet,
    build_teacher,
)
from hallucinet_plugin.version import __version__

META_KEY = b'__meta__'
FORMAT = 'hallucinet-teacher-bank'
FORMAT_VERSION = 1
DTYPES = {'float16': '<f2', 'float32': '<f4'}
# Address space reserved for the memory map, not disk: LMDB's file grows
# with its contents (no MDB_WRITEMAP), so 1 TiB costs nothing.
MAP_SIZE = 1 << 40
# Settings that change the stored features: a store made with other values
# is refused rather than mixed.
IDENTITY_KEYS = ('format', 'format_version', 'teacher_config',
                 'teacher_ckpt_sha256', 'teacher_layer', 'teacher_pool',
                 'clip_len', 'frame_interval', 'stride', 'out_of_bound_opt',
                 'dtype', 'view')
# Transforms between the decode and HalluSplitViews, made deterministic
# for the bank: kept as they are, replaced, or dropped (None).
_DETERMINISTIC = ('Resize', 'CenterCrop')
_RANDOM_TO_DETERMINISTIC = {
    'RandomCrop': lambda t: dict(type='CenterCrop', crop_size=t['size']),
    'Flip': lambda t: None,
}
_HEADER = struct.Struct('<4sIII')
_MAGIC = b'HNB1'

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------- windows
def clip_span(clip_len: int, frame_interval: int) -> int:
    """Frames a clip covers, first to last."""
    return (clip_len - 1) * frame_interval + 1


def default_stride(clip_len: int, frame_interval: int = 1) -> int:
    """Window stride putting every clip start within ``stride // 2`` frames
    of a window (4 for 16-frame clips)."""
    return max(1, clip_len * frame_interval // 4)


def window_starts(total_frames: int, clip_len: int, frame_interval: int,
                  stride: int) -> np.ndarray:
    """First frames of a video's windows: ``0, stride, ...`` while the clip
    fits, or just 0 for a video shorter than a clip.

    Returns:
        np.ndarray: ``(W, )`` int64.
    """
    last = max(total_frames - clip_span(clip_len, frame_interval), 0)
    return np.arange(0, last + 1, stride, dtype=np.int64)


def nearest_windows(clip_starts: np.ndarray, stride: int,
                    num_windows: int) -> np.ndarray:
    """Index of the window that starts nearest to each clip start.

    A tie (a start exactly between two windows, even strides only) goes to
    the earlier window; starts after the last window get the last one.

    Args:
        clip_starts (np.ndarray): ``(S, )`` first frames of the clips.
        stride (int): The bank's window stride.
        num_windows (int): Windows of the video.

    Returns:
        np.ndarray: ``(S, )`` int64 window indices.
    """
    starts = np.asarray(clip_starts, dtype=np.int64)
    # Rounding half down: (c + (stride - 1) // 2) // stride.
    index = (starts + (stride - 1) // 2) // stride
    return np.clip(index, 0, num_windows - 1)


def video_key(filename: str, data_prefix: Optional[str]) -> str:
    """A video's key: its path relative to the dataset's ``data_prefix``.

    Raises:
        KeyError: When ``filename`` is not under ``data_prefix``.
    """
    if not data_prefix:
        return osp.normpath(filename)
    root, path = osp.abspath(data_prefix), osp.abspath(filename)
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        raise KeyError(f'{filename} is not under the data prefix '
                       f'{data_prefix}')
    return osp.relpath(path, root)


# ---------------------------------------------------------------- format
def encode_track(feats: np.ndarray, total_frames: int, dtype: str) -> bytes:
    """A video's value: header and ``(W, D)`` features as ``dtype``."""
    feats = np.ascontiguousarray(feats, dtype=DTYPES[dtype])
    if feats.ndim != 2:
        raise ValueError(f'features must be (windows, dim), got shape '
                         f'{feats.shape}')
    header = _HEADER.pack(_MAGIC, total_frames, *feats.shape)
    return header + feats.tobytes()


def decode_track(value: bytes, dtype: str,
                 name: str = '?') -> Tuple[int, np.ndarray]:
    """Inverse of :func:`encode_track`.

    Returns:
        tuple[int, np.ndarray]: The video's frame count and its ``(W, D)``
        features (read-only view of ``value``, stored dtype).
    """
    if len(value) < _HEADER.size:
        raise ValueError(f'{name}: truncated teacher-bank entry')
    magic, total_frames, windows, dim = _HEADER.unpack_from(value)
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if magic != _MAGIC or len(value) != _HEADER.size + \
            windows * dim * itemsize:
        raise ValueError(f'{name}: not a teacher-bank entry of {windows} x '
                         f'{dim} {dtype} values ({len(value)} bytes)')
    feats = np.frombuffer(
        value, dtype=DTYPES[dtype], offset=_HEADER.size).reshape(
            windows, dim)
    return total_frames, feats


def _jsonable(obj):
    """Plain JSON types (tuples become lists), for stable comparisons."""
    return json.loads(json.dumps(obj, default=repr))


def _check_compatible(meta: Dict, settings: Dict, path: str) -> None:
    """Refuse a store whose features were made with other settings."""
    settings = _jsonable(settings)
    diffs = []
    for key in IDENTITY_KEYS + ('dim', ):
        if key not in settings or meta.get(key) == settings[key]:
            continue
        if key == 'teacher_config':
            lines = list(
                difflib.unified_diff(
                    str(meta.get(key)).splitlines(),
                    settings[key].splitlines(),
                    'store',
                    'requested',
                    lineterm='',
                    n=1))
            diffs.append('teacher_config differs:\n    ' +
                         '\n    '.join(lines[:12]))
        else:
            diffs.append(f'{key}: store {meta.get(key)!r}, requested '
                         f'{settings[key]!r}')
    if diffs:
        raise ValueError(
            f'teacher feature bank {path} was made with other settings; '
            'refusing to mix features of different teachers or clips:\n  ' +
            '\n  '.join(diffs) + '\nWrite to another --out, or delete the '
            'store to rebuild it.')


# ---------------------------------------------------------------- reader
# LMDB allows one open environment per file and process, so all readers of
# a store in a process share one, keyed by process: a forked worker finds
# its parent's entry under another pid, closes that copy (which py-lmdb
# would otherwise count as open; the parent's stays open) and opens its own.
_READERS: Dict[Tuple[int, str], lmdb.Environment] = {}


def _reader_env(path: str, lock: bool) -> lmdb.Environment:
    pid, real = os.getpid(), osp.realpath(path)
    env = _READERS.get((pid, real))
    if env is None:
        for key in [k for k in _READERS if k[1] == real]:
            _READERS.pop(key).close()
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise FileNotFoundError(
                f'teacher feature bank not found: {path} (build it with '
                'tools/extract_teacher_features.py)')
        env = lmdb.open(
            path,
            readonly=True,
            lock=lock,
            readahead=False,
            subdir=True,
            max_readers=1024)
        _READERS[(pid, real)] = env
    return env


def _close_reader(path: str) -> None:
    env = _READERS.pop((os.getpid(), osp.realpath(path)), None)
    if env is not None:
        env.close()


class FeatureBank:
    """Read-only access to a teacher feature bank.

    Nothing is opened until first use. The LMDB environment is opened once
    per process and store, shared by all readers in the process, and never
    used across a ``fork``: a data-loader worker opens its own (LMDB
    forbids using an environment opened before ``fork``).

    Args:
        path (str): The store (an LMDB folder).
        lock (bool): Use LMDB's reader lock table. Not needed for a
            finished store (the training case); needed to read one that is
            being written. The first reader of a store in a process decides.
    """

    def __init__(self, path: PathLike, lock: bool = False) -> None:
        self.path = str(path)
        self.lock = lock
        self._meta = None

    @property
    def env(self) -> lmdb.Environment:
        return _reader_env(self.path, self.lock)

    @property
    def meta(self) -> Dict:
        """The store's metadata (see the module docstring)."""
        if self._meta is None:
            with self.env.begin() as txn:
                raw = txn.get(META_KEY)
            if raw is None:
                raise ValueError(
                    f'{self.path}: no teacher-bank metadata ({META_KEY!r}); '
                    'not a teacher feature bank, or an extraction that '
                    'committed nothing')
            meta = json.loads(raw)
            if meta.get('format') != FORMAT or \
                    meta.get('format_version') != FORMAT_VERSION:
                raise ValueError(
                    f'{self.path}: format {meta.get("format")!r} version '
                    f'{meta.get("format_version")!r}, expected {FORMAT!r} '
                    f'version {FORMAT_VERSION}')
            self._meta = meta
        return self._meta

    def _track(self, key: str) -> Tuple[int, np.ndarray]:
        with self.env.begin() as txn:
            value = txn.get(key.encode())
        if value is None:
            raise KeyError(
                f'video {key!r} is not in the teacher feature bank '
                f'{self.path}; extract it with tools/extract_teacher_'
                'features.py (--splits naming its split, --unlabelled '
                'LIST for unlabelled videos)')
        return decode_track(value, self.meta['dtype'], f'{self.path}[{key}]')

    def get(self, key: str) -> Tuple[int, np.ndarray]:
        """One video's frame count and ``(W, D)`` float32 features.

        Raises:
            KeyError: Naming the video and the store when it is missing.
        """
        total, feats = self._track(key)
        return total, feats.astype(np.float32)

    def key_of(self,
               filename: str,
               data_prefix: Optional[str] = None) -> str:
        """The key of a dataset's video file.

        Args:
            filename (str): The sample's ``filename`` (prefix included).
            data_prefix (str, optional): The dataset's
                ``data_prefix['video']``; None tries the prefixes recorded
                at extraction, longest first.

        Raises:
            KeyError: When no prefix holds the file.
        """
        prefixes = [data_prefix] if data_prefix is not None else sorted(
            self.meta['data_prefixes'], key=len, reverse=True)
        for prefix in prefixes:
            try:
                return video_key(filename, prefix)
            except KeyError:
                continue
        raise KeyError(
            f'{filename} is under none of the data prefixes {prefixes} of '
            f'the teacher feature bank {self.path}; pass the dataset\'s '
            "data_prefix['video'] (LoadTeacherFeatures' data_prefix)")

    def lookup(self, key: str,
               clip_starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Targets of clips by their first frames: each gets the window
        that starts nearest (see :func:`nearest_windows`).

        Args:
            key (str): The video.
            clip_starts (np.ndarray): ``(S, )`` first frames, in the
                decoder's numbering (``start_index`` included).

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(S, D)`` float32 targets and
            the ``(S, )`` first frames of the windows they come from.

        Raises:
            KeyError: The video is not stored.
            ValueError: A clip lies beyond the frames the bank saw.
        """
        total, feats = self._track(key)
        meta = self.meta
        starts = np.asarray(clip_starts, dtype=np.int64)
        last = max(total - clip_span(meta['clip_len'],
                                     meta['frame_interval']), 0)
        if starts.min() < 0 or starts.max() > last:
            raise ValueError(
                f'{key}: clip starts {starts.tolist()} outside the {total} '
                f'frames the bank {self.path} saw (last clip start {last}); '
                'has the video changed since extraction?')
        index = nearest_windows(starts, meta['stride'], len(feats))
        return feats[index].astype(np.float32), index * meta['stride']

    def keys(self) -> List[str]:
        """The stored videos' keys, in LMDB (byte) order."""
        with self.env.begin() as txn:
            return [
                k.decode() for k in txn.cursor().iternext(values=False)
                if k != META_KEY
            ]

    def __contains__(self, key: str) -> bool:
        with self.env.begin() as txn:
            return txn.get(key.encode()) is not None

    def __len__(self) -> int:
        return len(self.keys())

    def close(self) -> None:
        """Close this process's environment of the store (shared by every
        reader of it; they reopen it when next used)."""
        _close_reader(self.path)


# ---------------------------------------------------------------- writer
class FeatureBankWriter:
    """Write video entries into a (new or partly written) feature bank.

    Each :meth:`put` is one transaction: the entry (and, with the first
    one, the metadata) is either fully committed or absent.

    Args:
        path (str): The store folder; created when missing.
        settings (dict): The :data:`IDENTITY_KEYS` and any other metadata
            (``teacher_ckpt``); an existing store must match them.
        map_size (int): Bytes of address space for the memory map.
    """

    def __init__(self,
                 path: PathLike,
                 settings: Dict,
                 map_size: int = MAP_SIZE) -> None:
        path = str(path)
        missing = [k for k in IDENTITY_KEYS if k not in settings]
        if missing:
            raise KeyError(f'teacher-bank settings lack {missing}')
        if osp.exists(path) and not osp.isdir(path):
            raise FileExistsError(f'{path} exists and is not a teacher '
                                  'feature bank folder')
        if osp.isdir(path) and os.listdir(path) and not osp.isfile(
                osp.join(path, 'data.mdb')):
            raise FileExistsError(f'{path} is a non-empty folder without '
                                  'data.mdb: not a teacher feature bank')
        os.makedirs(path, exist_ok=True)
        # LMDB refuses a second environment of the file in this process.
        _close_reader(path)
        self.path = path
        self.settings = _jsonable(settings)
        self.env = lmdb.open(path, map_size=map_size, subdir=True)
        self._meta_checked = False
        try:
            with self.env.begin() as txn:
                raw = txn.get(META_KEY)
            if raw is not None:
                _check_compatible(json.loads(raw), self.settings, path)
            elif self.env.stat()['entries'] > 0:
                raise ValueError(f'{path}: entries but no teacher-bank '
                                 'metadata; not a teacher feature bank')
        except Exception:
            # LMDB allows one open environment per path and process.
            self.env.close()
            raise

    def done_keys(self) -> set:
        """Keys of the committed videos."""
        with self.env.begin() as txn:
            return {
                k.decode()
                for k in txn.cursor().iternext(values=False) if k != META_KEY
            }

    def _ensure_meta(self, txn: lmdb.Transaction, dim: int) -> None:
        raw = txn.get(META_KEY)
        settings = dict(self.settings, dim=dim)
        if raw is None:
            meta = dict(
                settings,
                data_prefixes=[],
                videos={},
                complete=False,
                created=_creation_info(),
                updated_at=None)
            txn.put(META_KEY, json.dumps(meta, indent=1).encode())
        else:
            # Another rank may have created the store since __init__.
            _check_compatible(json.loads(raw), settings, self.path)
        self._meta_checked = True

    def put(self, key: str, total_frames: int, feats: np.ndarray) -> None:
        """Commit one video's ``(W, D)`` features."""
        if key.encode() == META_KEY:
            raise ValueError(f'{META_KEY!r} is reserved for the metadata')
        value = encode_track(feats, total_frames, self.settings['dtype'])
        with self.env.begin(write=True) as txn:
            if not self._meta_checked:
                self._ensure_meta(txn, int(feats.shape[1]))
            txn.put(key.encode(), value)

    def finalize(self, expected: Sequence[str],
                 data_prefixes: Sequence[str]) -> Dict:
        """Record the videos, their window counts and the data prefixes.

        Every rank calls this when done; the last one sees every entry.

        Args:
            expected (Sequence[str]): The keys this run was asked for.
            data_prefixes (Sequence[str]): The datasets' data prefixes.

        Returns:
            dict: The updated metadata, or an empty dict when nothing has
            been committed yet (by any rank).
        """
        with self.env.begin(write=True) as txn:
            raw = txn.get(META_KEY)
            if raw is None:
                return {}
            meta = json.loads(raw)
            videos = {}
            cursor = txn.cursor()
            for k, v in cursor.iternext(keys=True, values=True):
                if k != META_KEY:
                    videos[k.decode()] = _HEADER.unpack_from(v)[2]
            meta['videos'] = videos
            meta['data_prefixes'] = sorted(
                set(meta['data_prefixes']) | set(data_prefixes))
            meta['complete'] = all(k in videos for k in expected)
            meta['updated_at'] = _now()
            txn.put(META_KEY, json.dumps(meta, indent=1).encode())
        return meta

    def close(self) -> None:
        self.env.close()


def _now() -> str:
    return datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec='seconds')


def _creation_info() -> Dict:
    return dict(
        time=_now(),
        host=socket.gethostname(),
        versions=dict(
            hallucinet_plugin=__version__,
            mmaction=mmaction.__version__,
            mmengine=mmengine.__version__,
            torch=torch.__version__))


# --------------------------------------------------------------- teacher
class TeacherFeatureExtractor(nn.Module):
    """The frozen teacher of a HalluciNet config, without its student.

    Building the whole HalluciNet would also build (and possibly download)
    its student. This module holds only what HalluciNet's teacher methods
    read (``teacher``, ``teacher_layer``, ``teacher_pool``) and borrows
    those methods themselves, so bank and online target come from the same
    code.

    Args:
        teacher (str | dict): ``model.teacher`` of a HalluciNet config.
        teacher_ckpt (str): ``model.teacher_ckpt``.
        teacher_layer, teacher_pool, max_missing_teacher_keys: As in
            :class:`HalluciNet`.
    """
    load_teacher = HalluciNet.load_teacher
    extract_teacher_feat = HalluciNet.extract_teacher_feat
    _freeze_teacher = HalluciNet._freeze_teacher

    def __init__(self,
                 teacher: Union[str, Dict],
                 teacher_ckpt: str,
                 teacher_layer: Optional[str] = None,
                 teacher_pool: str = 'avg',
                 max_missing_teacher_keys: int = 0) -> None:
        super().__init__()
        self.teacher = build_teacher(teacher)
        self.teacher_layer = teacher_layer
        self.teacher_pool = teacher_pool
        self.load_teacher(teacher_ckpt, max_missing_teacher_keys)
        self._freeze_teacher()

    def train(self, mode: bool = True) -> 'TeacherFeatureExtractor':
        super().train(mode)
        self.teacher.eval()
        return self


def _hallucinet_arg(model_cfg: Dict, name: str):
    """A HalluciNet argument from the config, else HalluciNet's default."""
    if name in model_cfg:
        return model_cfg[name]
    return inspect.signature(HalluciNet).parameters[name].default


def sha256_file(filename: str) -> str:
    """Hex sha256 of a file (or of a URL's download)."""
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'teacher_ckpt not found: {filename} (set model.teacher_ckpt to '
            'the trained teacher checkpoint)')
    digest = hashlib.sha256()
    with get_local_path(filename) as local:
        with open(local, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------- config
def _load_config(cfg: Union[PathLike, Config]) -> Config:
    if isinstance(cfg, Config):
        return cfg
    if not osp.isfile(cfg):
        raise FileNotFoundError(f'config not found: {cfg}')
    return Config.fromfile(str(cfg))


def _to_builtin(obj):
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_builtin(v) for v in obj)
    return obj


def _find(pipeline: Sequence[Dict], name: str, where: str) -> int:
    # Subclasses count (HalluSparseSampleFrames is a HalluSampleFrames).
    wanted = TRANSFORMS.get(name)

    def is_a(transform: Dict) -> bool:
        cls = transform.get('type')
        cls = TRANSFORMS.get(cls) if isinstance(cls, str) else cls
        return isinstance(cls, type) and issubclass(cls, wanted)

    hits = [i for i, t in enumerate(pipeline) if is_a(t)]
    if len(hits) != 1:
        raise ValueError(
            f'{where}: the train pipeline needs exactly one {name} to '
            f'derive the bank settings, found {len(hits)} (extract with '
            'the online-teacher config the bank config derives from)')
    return hits[0]


def _innermost_dataset(dataset: Dict, where: str) -> Dict:
    """The (possibly wrapped) dataset config that holds the pipeline; the
    same object, so it can be edited in place."""
    while 'pipeline' not in dataset:
        inner = dataset.get('dataset') or (dataset.get('datasets') or [None
                                                                       ])[0]
        if inner is None:
            raise ValueError(f'{where}: train_dataloader.dataset has no '
                             'pipeline')
        dataset = inner
    return dataset


def _pipeline_datasets(dataset: Dict) -> List[Dict]:
    """Every dataset config with a pipeline inside ``dataset`` (itself,
    or the datasets that wrappers and ``ConcatDataset`` hold), to be edited
    in place."""
    if 'pipeline' in dataset:
        return [dataset]
    inner = list(dataset.get('datasets') or [])
    if dataset.get('dataset') is not None:
        inner.append(dataset['dataset'])
    return [d for ds in inner for d in _pipeline_datasets(ds)]


def _dataset_pipeline(dataset: Dict, where: str) -> List[Dict]:
    """The pipeline of a (possibly wrapped) dataset config."""
    return list(_innermost_dataset(dataset, where)['pipeline'])


def bank_settings(cfg: Union[PathLike, Config],
                  stride: Optional[int] = None,
                  dtype: str = 'float16') -> Dict:
    """What a config's bank holds, read from its model and train pipeline.

    Args:
        cfg (str | Config): An online-teacher HalluciNet config (with
            ``model.teacher``).
        stride (int, optional): Window stride; :func:`default_stride` when
            None.
        dtype (str): ``'float16'`` or ``'float32'``.

    Returns:
        dict: The :data:`IDENTITY_KEYS` except ``teacher_ckpt_sha256``,
        plus ``teacher_ckpt`` (path) and what the extraction uses (not
        stored): the built transforms (``_pipeline``) and the teacher
        view's normaliser (``_preprocessor``).
    """
    cfg = _load_config(cfg)
    where = cfg.filename or 'config'
    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {list(DTYPES)}, got '
                         f'{dtype!r}')
    model = cfg.get('model') or {}
    if model.get('teacher') is None:
        raise ValueError(
            f'{where}: model.teacher is not set. Extract with the '
            'online-teacher config (the one the -bank config derives '
            'from), which names the teacher and its checkpoint.')
    if model.get('teacher_ckpt') is None:
        raise ValueError(f'{where}: model.teacher_ckpt is not set; a bank '
                         "of an untrained teacher's features is useless")
    teacher = model['teacher']
    if isinstance(teacher, str):
        teacher = Config.fromfile(teacher)['model']
    teacher = _to_builtin(copy.deepcopy(teacher))
    # As build_teacher: the recognizer's own preprocessor is not used.
    teacher.pop('data_preprocessor', None)

    init_default_scope(cfg.get('default_scope', 'mmaction'))
    pipeline = _dataset_pipeline(cfg.train_dataloader.dataset, where)
    i_sampler = _find(pipeline, 'HalluSampleFrames', where)
    i_split = _find(pipeline, 'HalluSplitViews', where)
    inits = [
        i for i in range(i_sampler) if pipeline[i]['type'].endswith('Init')
    ]
    decodes = [
        i for i in range(i_sampler, i_split)
        if pipeline[i]['type'].endswith('Decode')
    ]
    if len(inits) != 1 or len(decodes) != 1:
        raise ValueError(
            f'{where}: expected one *Init before HalluSampleFrames and one '
            '*Decode between it and HalluSplitViews (video decoding) in '
            'the train pipeline')
    sampler = TRANSFORMS.build(pipeline[i_sampler])
    split = TRANSFORMS.build(pipeline[i_split])
    if cfg.get('teacher_bank_view') is not None:
        view = [_to_builtin(t) for t in cfg.teacher_bank_view]
    else:
        view = []
        for t in pipeline[decodes[0] + 1:i_split]:
            t = _to_builtin(t)
            if t['type'] in _DETERMINISTIC:
                view.append(t)
            elif t['type'] in _RANDOM_TO_DETERMINISTIC:
                t = _RANDOM_TO_DETERMINISTIC[t['type']](t)
                if t is not None:
                    view.append(t)
            else:
                raise ValueError(
                    f'{where}: cannot derive a deterministic teacher view '
                    f'from {t["type"]} in the train pipeline; set '
                    '`teacher_bank_view` in the config to the transforms '
                    'the bank should apply between decoding and '
                    'HalluSplitViews')
    preprocessor = MODELS.build(model['data_preprocessor'])
    if not hasattr(preprocessor, 'teacher'):
        raise ValueError(f'{where}: model.data_preprocessor must be a '
                         'HalluciNetDataPreprocessor (per-view '
                         'normalisation)')
    norm = preprocessor.teacher
    normalise = getattr(norm, '_enable_normalize', False)
    stride = stride or default_stride(sampler.clip_len,
                                      sampler.frame_interval)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    return dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        teacher_config=json.dumps(teacher, indent=2, sort_keys=True),
        teacher_ckpt=str(model['teacher_ckpt']),
        teacher_layer=_hallucinet_arg(model, 'teacher_layer'),
        teacher_pool=_hallucinet_arg(model, 'teacher_pool'),
        clip_len=sampler.clip_len,
        frame_interval=sampler.frame_interval,
        stride=int(stride),
        out_of_bound_opt=sampler.out_of_bound_opt,
        dtype=dtype,
        view=dict(
            transforms=_jsonable(view),
            scale=list(split.teacher_scale) if split.teacher_scale else None,
            interpolation=split.interpolation,
            mean=norm.mean.flatten().tolist() if normalise else None,
            std=norm.std.flatten().tolist() if normalise else None,
            to_rgb=norm.to_rgb),
        _pipeline=dict(
            init=TRANSFORMS.build(pipeline[inits[0]]),
            decode=TRANSFORMS.build(pipeline[decodes[0]]),
            view=[TRANSFORMS.build(t) for t in view],
            split=split,
            sampler=sampler),
        _preprocessor=norm)


def _read_bank_in(dataset: Dict, store: str, where: str) -> None:
    """Switch one train dataset config's pipeline from the teacher view to
    the bank (see :func:`use_teacher_bank`), in place."""
    pipeline = dataset['pipeline']
    prefix = dataset.get('data_prefix') or {}
    if prefix.get('img') and not prefix.get('video'):
        raise ValueError(
            f'{where}: the train dataset reads frame folders '
            '(data_prefix.img); the feature bank is built from videos '
            '(data_prefix.video), so train this config with its online '
            'teacher')
    if any(t['type'] == 'LoadFlowClips' for t in pipeline):
        raise ValueError(
            f'{where}: the teacher reads optical flow (LoadFlowClips), and '
            'the feature bank stores teachers of decoded RGB clips only; '
            'train this config with its online teacher')
    i_sampler = _find(pipeline, 'HalluSampleFrames', where)
    i_split = _find(pipeline, 'HalluSplitViews', where)
    sampler = pipeline[i_sampler]
    sampler['with_teacher'] = False
    pipeline[i_split]['teacher_scale'] = None
    packs = [t for t in pipeline if t['type'] == 'PackActionInputs']
    if len(packs) != 1 or 'teacher_imgs' not in packs[0].get(
            'collect_keys', ()):
        raise ValueError(
            f'{where}: expected one PackActionInputs collecting '
            "'teacher_imgs' in the train pipeline")
    packs[0]['collect_keys'] = tuple(
        'teacher_feats' if k == 'teacher_imgs' else k
        for k in packs[0]['collect_keys'])
    load = dict(
        type='LoadTeacherFeatures',
        store=store,
        data_prefix=prefix.get('video'),
        clip_len=sampler['clip_len'])
    if 'frame_interval' in sampler:
        load['frame_interval'] = sampler['frame_interval']
    pipeline.insert(i_sampler + 1, load)


def use_teacher_bank(cfg: Config, store: str) -> Config:
    """Switch an online-teacher HalluciNet config to its feature bank.

    What ``tools/train.py CONFIG --teacher-bank STORE`` does, so every
    HalluciNet config (the repository's and users' own) has a bank variant
    without a second file. In the train pipeline, the sampler stops adding
    the teacher's frames, :class:`LoadTeacherFeatures` (reading ``store``,
    with the sampler's clip length) follows it, the teacher view is no
    longer made, and ``teacher_feats`` is packed instead of
    ``teacher_imgs``; the model's teacher and checkpoint are unset, so the
    teacher is not even built. Validation and test pipelines, which never
    ran the teacher, are unchanged. Build the store from the same config
    with ``tools/extract_teacher_features.py``.

    Args:
        cfg (Config): An online-teacher config, edited in place.
        store (str): The feature store (an LMDB directory).

    Returns:
        Config: ``cfg``.
    """
    where = cfg.filename or 'config'
    model = cfg.get('model') or {}
    if model.get('teacher') is None:
        raise ValueError(
            f'{where}: model.teacher is not set, so there is no online '
            'teacher for --teacher-bank to replace (is this already a '
            '-bank config, or not a HalluciNet config?)')
    if not osp.isdir(store):
        raise FileNotFoundError(
            f'teacher feature bank not found: {store}; build it with '
            f'tools/extract_teacher_features.py {where} --out {store}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Every dataset of the train set: a ConcatDataset of labelled and
    # unlabelled videos (--unlabelled) reads the bank in both.
    for dataset in _pipeline_datasets(cfg.train_dataloader.dataset):
        _read_bank_in(dataset, store, where)
    model['teacher'] = None
    model['teacher_ckpt'] = None
    cfg.teacher_bank = store
    return cfg


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
    cfg = _load_config(cfg)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    videos: Dict[str, str] = {}
    prefixes = set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader is None or 'dataset' not in loader:
            raise KeyError(f'{cfg.filename}: no {split}_dataloader.dataset '
                           f'for split {split!r}')
        dataset = DATASETS.build(
            _empty_pipelines(_to_builtin(loader['dataset'])))
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
                             progress: bool = True) -> Dict:
    """Compute a config's frozen teacher over its videos, into a bank.

    Resumable: videos already committed to ``out`` are skipped. With
    ``torch.distributed`` initialised, rank ``r`` of ``w`` takes every
    ``w``-th video from the ``r``-th; all ranks write into one store.

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

    Returns:
        dict: ``store``, ``videos`` (in the splits), ``extracted`` and
        ``skipped`` (this rank), ``windows`` (extracted by this rank),
        ``complete`` (all of the splits' videos stored).
    """
    cfg = _load_config(cfg)
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
    writer = FeatureBankWriter(out, stored)
    try:
        rank, world_size = get_dist_info()
        done = writer.done_keys()
        shard = videos[rank::world_size]
        todo = [v for v in shard if v[0] not in done]
        model = cfg.model
        extractor = TeacherFeatureExtractor(
            model['teacher'],
            model['teacher_ckpt'],
            teacher_layer=settings['teacher_layer'],
            teacher_pool=settings['teacher_pool'],
            max_missing_teacher_keys=_hallucinet_arg(
                model, 'max_missing_teacher_keys')).to(device)
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


def _run(loader: DataLoader, extractor: TeacherFeatureExtractor,
         preprocessor: nn.Module, writer: FeatureBankWriter,
         device: torch.device, num_videos: int, progress: bool) -> int:
    """Teacher forward per item; commit each video once all its chunks are
    done. Returns the number of windows extracted."""
    pending: Dict[str, Dict[int, torch.Tensor]] = {}
    windows = 0
    bar = tqdm(
        total=num_videos,
        unit='video',
        desc='teacher bank',
        disable=not progress or num_videos == 0,
        dynamic_ncols=True)
    try:
        for item in loader:
            frames = item['frames'].to(device, non_blocking=True)
            clips = teacher_clips(frames, item['positions'].to(device),
                                  preprocessor)
            # [B, C, T, H, W] -> [1, B, C, T, H, W]: one sample of B clips.
            feats = extractor.extract_teacher_feat(clips[None]).float()
            parts = pending.setdefault(item['key'], {})
            parts[item['chunk']] = feats.cpu()
            windows += len(feats)
            if len(parts) == item['num_chunks']:
                track = torch.cat([parts[i] for i in range(len(parts))])
                writer.put(item['key'], item['total_frames'], track.numpy())
                del pending[item['key']]
                bar.update()
                bar.set_postfix(clips=windows, refresh=False)
    finally:
        bar.close()
    if pending:
        raise RuntimeError(f'incomplete videos after extraction: '
                           f'{sorted(pending)}')
    return windows
