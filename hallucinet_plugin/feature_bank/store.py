"""Reading the teacher feature bank: a folder of ``meta.json`` and LMDB
shards (format in :mod:`.bank_format`; docs/user_guides/feature_bank.md
for the layout and why LMDB)."""
import difflib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import lmdb
import numpy as np

from ..utils.typing_utils import PathLike
from .bank_format import (
    DTYPES,
    IDENTITY_KEYS,
    MAX_ABS,
    SHARD_KEY,
    Entry,
    check_values,
    read_meta,
    shard_name,
    shard_of,
    to_float32,
)
from .geometry import clip_span


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
        if key not in settings or key not in meta or \
                meta.get(key) == settings[key]:
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
# a store in a process share its shards' environments. A forked worker
# must not use its parent's: the fork handler closes the child's copies
# (the parent's stay open) and the next read opens its own, so the read
# path makes no system call to find out.
_READERS: Dict[str, List] = {}
# Bumped by a fork and by close_readers: every reader then finds its
# environments again.
_GENERATION = [0]


def _after_fork_in_child() -> None:
    stale = list(_READERS.values())
    _READERS.clear()
    _GENERATION[0] += 1
    for shards in stale:
        for shard in shards:
            if shard:
                shard.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Shard:
    """A shard's read-only environment. Without the reader lock (a
    finished store) one read transaction stays open for the process's
    reads: a finished store does not change, and beginning a transaction
    per read would cost more than the read."""

    def __init__(self, path: str, lock: bool) -> None:
        self.env = lmdb.open(
            path,
            readonly=True,
            lock=lock,
            readahead=False,
            subdir=True,
            max_readers=1024)
        _check_file_size(self.env, path)
        self.held = None if lock else _Held(self.env.begin(buffers=True))

    def txn(self):
        """A read transaction (a context)."""
        return self.held or self.env.begin(buffers=True)

    def close(self) -> None:
        self.env.close()


class _Held:
    """The held transaction, as a context that leaves it open."""

    def __init__(self, txn) -> None:
        self.txn = txn

    def __enter__(self):
        return self.txn

    def __exit__(self, *exc) -> None:
        pass


def _open_reader(path: str, lock: bool):
    """A shard's reader; False when the shard holds nothing yet (no
    folder)."""
    if not osp.isfile(osp.join(path, 'data.mdb')):
        return False
    return _Shard(path, lock)


def _check_file_size(env: lmdb.Environment, path: str) -> None:
    """Refuse a shard whose ``data.mdb`` ends before its last page: reading
    a page past the end of a memory-mapped file kills the process with
    SIGBUS, with nothing named."""
    data = osp.join(path, 'data.mdb')
    size = osp.getsize(data)
    need = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    if size < need:
        env.close()
        raise ValueError(
            f'teacher feature bank shard {path} is truncated: {data} holds '
            f'{size} bytes, its pages need {need}; copy it again or rebuild '
            'it with tools/extract_teacher_features.py')


def close_readers(path: str) -> None:
    """Close this process's read environments of a store (a writer of the
    same files needs them closed: one environment per file and
    process)."""
    _GENERATION[0] += 1
    for shard in _READERS.pop(osp.realpath(path), ()):
        if shard:
            shard.close()


class FeatureBank:
    """Read-only access to a teacher feature bank.

    Nothing is opened until first use. Each shard's LMDB environment is
    opened once per process and store, shared by all readers in the
    process, and never used across a ``fork``: a data-loader worker opens
    its own (LMDB forbids using an environment opened before ``fork``).
    A read copies only the rows it uses, checked against their CRCs; the
    entry's header binds it to its video and to the store's teacher. Read
    from one thread per process (data-loader workers are processes): a
    finished store's readers share one held read transaction per shard.

    Args:
        path (str): The store (a folder with ``meta.json`` and shards).
        lock (bool): Use LMDB's reader lock table. Not needed for a
            finished store (the training case); needed to read one that is
            being written. The first reader of a store in a process decides.
    """

    def __init__(self, path: PathLike, lock: bool = False) -> None:
        self.path = str(path)
        self.lock = lock
        self._meta = None
        self._envs = None
        self._generation = -1

    @property
    def meta(self) -> Dict:
        """The store's metadata (``meta.json``, checked against its
        sha256)."""
        if self._meta is None:
            if not osp.isdir(self.path):
                raise FileNotFoundError(
                    f'teacher feature bank not found: {self.path} (build it '
                    'with tools/extract_teacher_features.py)')
            meta = read_meta(self.path)
            if meta is None:
                raise ValueError(
                    f'{self.path}: no teacher-bank metadata (meta.json); '
                    'not a teacher feature bank')
            self._meta = meta
            self._tag = meta['tag']
            self._bound = meta.get('max_abs') or MAX_ABS
            self._itemsize = np.dtype(DTYPES[meta['dtype']]).itemsize
            self._span = clip_span(meta['clip_len'], meta['frame_interval'])
        return self._meta

    def __getstate__(self) -> Dict:
        # Environments stay in their process (a spawned worker opens its
        # own); the checked metadata travels.
        return dict(self.__dict__, _envs=None, _generation=-1)

    def _env(self, key: bytes):
        """The reader of the shard that holds ``key`` (False when that
        shard holds nothing)."""
        if self._generation != _GENERATION[0]:
            self._attach()
        envs = self._envs
        index = shard_of(key, len(envs)) if len(envs) > 1 else 0
        env = envs[index]
        if env is None:
            env = envs[index] = _open_reader(
                osp.join(self.path, shard_name(index)), self.lock)
        return env

    def _attach(self) -> None:
        """Find this process's shard readers of the store (after a fork or
        a close, new ones)."""
        self._envs = _READERS.setdefault(
            osp.realpath(self.path), [None] * self.meta['shards'])
        self._generation = _GENERATION[0]

    def _txn(self, key: bytes):
        """A read transaction of the shard of ``key`` (a context)."""
        shard = self._env(key)
        return shard.txn() if shard else _NoTxn()

    def _missing(self, key: str) -> KeyError:
        return KeyError(
            f'video {key!r} is not in the teacher feature bank '
            f'{self.path}; extract it with tools/extract_teacher_'
            'features.py (--splits naming its split, --unlabelled '
            'LIST for unlabelled videos)')

    def get(self, key: str) -> Tuple[int, np.ndarray]:
        """One video's frame count and ``(W, D)`` float32 features, every
        row checked.

        Raises:
            KeyError: Naming the video and the store when it is missing.
        """
        meta = self.meta
        kb = key.encode()
        with self._txn(kb) as txn:
            value = txn.get(kb)
            if value is None:
                raise self._missing(key)
            entry = Entry(value, kb, self._itemsize, self._tag, self.path)
            data = entry.rows(range(entry.windows))
        feats = to_float32(data, meta['dtype'], entry.dim)
        self._check_bound(feats, key)
        return entry.total_frames, feats

    def _check_bound(self, feats: np.ndarray, key: str) -> None:
        # One reduction; NaN compares False.
        if not np.maximum.reduce(np.abs(feats), axis=None) <= self._bound:
            check_values(feats, f'teacher feature bank {self.path}, {key}',
                         self._bound)

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
            # The common case by string alone (no system call): the
            # dataset joined its prefix and the list's path.
            root = (prefix or '').rstrip('/')
            if root and filename.startswith(root + '/'):
                rel = filename[len(root) + 1:]
                if '/.' in rel or '//' in rel or rel.startswith('.'):
                    rel = osp.normpath(rel)
                if rel != '.' and not rel.startswith('..'):
                    return rel
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
            clip_starts (np.ndarray | list): ``(S, )`` first frames, in
                the decoder's numbering (``start_index`` included).

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(S, D)`` float32 targets and
            the ``(S, )`` first frames of the windows they come from.

        Raises:
            KeyError: The video is not stored.
            ValueError: A clip lies beyond the frames the bank saw, or the
                entry fails its checks (naming the store and the video).
        """
        meta = self.meta
        kb = key.encode()
        starts = clip_starts if isinstance(clip_starts, list) else \
            np.asarray(clip_starts).reshape(-1).tolist()
        stride = meta['stride']
        with self._txn(kb) as txn:
            value = txn.get(kb)
            if value is None:
                raise self._missing(key)
            entry = Entry(value, kb, self._itemsize, self._tag, self.path)
            total = entry.total_frames
            last = max(total - self._span, 0)
            if min(starts) < 0 or max(starts) > last:
                raise ValueError(
                    f'{key}: clip starts {starts} outside the {total} frames '
                    f'the bank {self.path} saw (last clip start {last}); '
                    'has the video changed since extraction?')
            # nearest_windows, on Python ints (a sample has a few).
            half, top = (stride - 1) // 2, entry.windows - 1
            index = [min((s + half) // stride, top) for s in starts]
            data = entry.rows(index)
        # Each row passed its CRC: it holds what extraction wrote, which
        # was finite and within the bound recorded then (verify() checks
        # the bound over the whole store).
        targets = to_float32(data, meta['dtype'], entry.dim)
        return targets, np.array([i * stride for i in index],
                                 dtype=np.int64)

    def keys(self) -> List[str]:
        """The stored videos' keys, shard by shard, each in byte order."""
        keys = []
        for index in range(self.meta['shards']):
            shard = self._shard_env(index)
            if not shard:
                continue
            with shard.env.begin() as txn:
                keys.extend(
                    k.decode() for k in txn.cursor().iternext(values=False)
                    if k != SHARD_KEY)
        return keys

    def _shard_env(self, index: int):
        if self._generation != _GENERATION[0]:
            self._attach()
        env = self._envs[index]
        if env is None:
            env = self._envs[index] = _open_reader(
                osp.join(self.path, shard_name(index)), self.lock)
        return env

    def verify(self, progress: bool = False) -> int:
        """Check every entry of the store: headers, every row's CRC,
        finite values within the store's recorded bound. What the read
        path checks per row, over the whole store (``tools/
        verify_teacher_bank.py``).

        Returns:
            int: The number of entries checked.

        Raises:
            ValueError: At the first damaged entry, naming it.
        """
        keys = self.keys()
        bar = None
        if progress:
            import sys

            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(keys), file=sys.stderr)
        for key in keys:
            feats = self.get(key)[1]
            check_values(feats, f'teacher feature bank {self.path}, {key}',
                         self._bound)
            if bar is not None:
                bar.update()
        return len(keys)

    def __contains__(self, key: str) -> bool:
        kb = key.encode()
        with self._txn(kb) as txn:
            return txn.get(kb) is not None

    def __len__(self) -> int:
        return len(self.keys())

    def close(self) -> None:
        """Close this process's environments of the store (shared by every
        reader of it; they reopen them when next used)."""
        close_readers(self.path)
        self._generation = -1


class _NoTxn:
    """The transaction of a shard that holds nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    @staticmethod
    def get(key):
        return None
