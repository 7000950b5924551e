"""The teacher feature bank's storage: one LMDB environment (see
docs/user_guides/feature_bank.md for the layout and why LMDB)."""
import datetime
import difflib
import json
import os
import os.path as osp
import socket
import struct
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import lmdb
import mmaction
import mmengine
import numpy as np
import torch

from ..utils.typing_utils import PathLike
from ..version import __version__
from .geometry import clip_span, nearest_windows

META_KEY = b'__meta__'
FORMAT = 'hallucinet-teacher-bank'
# 2: every entry carries a CRC-32 of its values.
FORMAT_VERSION = 2
DTYPES = {'float16': '<f2', 'float32': '<f4'}
# Largest magnitude a stored feature may have: float16's range, so that
# both dtypes hold every accepted value.
MAX_ABS = float(np.finfo(np.float16).max)
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
_HEADER = struct.Struct('<4sIIII')
_MAGIC = b'HNB2'



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
    check_values(feats, 'teacher features to store')
    feats = np.ascontiguousarray(feats, dtype=DTYPES[dtype])
    if feats.ndim != 2:
        raise ValueError(f'features must be (windows, dim), got shape '
                         f'{feats.shape}')
    return pack_track(feats, total_frames)


def pack_track(feats: np.ndarray, total_frames: int) -> bytes:
    """Header (with the values' CRC-32) and ``feats``' bytes, unchecked."""
    data = feats.tobytes()
    return _HEADER.pack(_MAGIC, total_frames, *feats.shape,
                        zlib.crc32(data)) + data


def check_values(feats: np.ndarray, where: str) -> None:
    """Refuse non-finite features and values beyond :data:`MAX_ABS`: a
    target the hallucination loss would silently saturate on (its sigmoid)
    is a broken teacher or a damaged store, not a feature.

    Args:
        feats (np.ndarray): Any shape.
        where (str): What they are, for the message (store and video).
    """
    values = np.asarray(feats, dtype=np.float32)
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f'{where}: {int(bad.sum())} values are not finite or beyond '
            f'+-{MAX_ABS:g} (first at {first}: {values[first]}); '
            're-extract with tools/extract_teacher_features.py')


def decode_track(value: bytes, dtype: str,
                 name: str = '?') -> Tuple[int, np.ndarray]:
    """Inverse of :func:`encode_track`.

    Returns:
        tuple[int, np.ndarray]: The video's frame count and its ``(W, D)``
        features (read-only view of ``value``, stored dtype).
    """
    if len(value) < _HEADER.size:
        raise ValueError(f'{name}: truncated teacher-bank entry')
    magic, total_frames, windows, dim, crc = _HEADER.unpack_from(value)
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if magic != _MAGIC or len(value) != _HEADER.size + \
            windows * dim * itemsize:
        raise ValueError(f'{name}: not a teacher-bank entry of {windows} x '
                         f'{dim} {dtype} values ({len(value)} bytes)')
    data = memoryview(value)[_HEADER.size:]
    if zlib.crc32(data) != crc:
        raise ValueError(
            f'{name}: checksum mismatch: the entry was damaged after it was '
            'written (disk or copy); re-extract the store with '
            'tools/extract_teacher_features.py')
    feats = np.frombuffer(data, dtype=DTYPES[dtype]).reshape(windows, dim)
    return total_frames, feats


def _jsonable(obj):
    """Plain JSON types (tuples become lists), for stable comparisons."""
    return json.loads(json.dumps(obj, default=repr))


def _check_compatible(meta: Dict,
                      settings: Dict,
                      path: str,
                      hint: str = 'Write to another --out, or delete the '
                      'store to rebuild it.') -> None:
    """Refuse a store whose features were made with other settings (the
    message lists both sides of every difference, then ``hint``)."""
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
            '\n  '.join(diffs) + '\n' + hint)


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
        _check_file_size(env, path)
        _READERS[(pid, real)] = env
    return env


def _check_file_size(env: lmdb.Environment, path: str) -> None:
    """Refuse a store whose ``data.mdb`` ends before its last page: reading
    a page past the end of a memory-mapped file kills the process with
    SIGBUS, with nothing named."""
    data = osp.join(path, 'data.mdb')
    size = osp.getsize(data)
    need = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    if size < need:
        env.close()
        raise ValueError(
            f'teacher feature bank {path} is truncated: {data} holds '
            f'{size} bytes, its pages need {need}; copy it again or rebuild '
            'it with tools/extract_teacher_features.py')


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
                    f'version {FORMAT_VERSION}; re-extract it with '
                    'tools/extract_teacher_features.py')
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
        targets = feats[index].astype(np.float32)
        check_values(targets, f'teacher feature bank {self.path}, {key}')
        return targets, index * meta['stride']

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
