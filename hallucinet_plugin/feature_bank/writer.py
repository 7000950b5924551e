"""Writing the teacher feature bank: entries batched into one LMDB
transaction per shard, every K videos or T seconds; one writer per shard,
so ranks that take disjoint shards never wait for each other."""
import contextlib
import datetime
import fcntl
import json
import os
import os.path as osp
import socket
import time
from typing import Dict, Iterator, Optional, Sequence

import lmdb
import mmaction
import mmengine
import numpy as np
import torch

from ..utils.typing_utils import PathLike
from ..version import __version__
from .bank_format import (
    IDENTITY_KEYS,
    META_FILE,
    SHARD_KEY,
    encode_entry,
    identity_tag,
    read_meta,
    shard_name,
    shard_of,
    shard_record,
    write_meta,
)
from .store import _check_compatible, _jsonable, close_readers

# Address space reserved for each shard's memory map, not disk: LMDB's file
# grows with its contents (no MDB_WRITEMAP), so 1 TiB costs nothing.
MAP_SIZE = 1 << 40
# Shards of a new store: one writer each, so up to this many ranks extract
# in parallel (more with ``shards``).
DEFAULT_SHARDS = 8


@contextlib.contextmanager
def _meta_lock(path: str) -> Iterator[None]:
    """Serialise metadata updates of a store across processes."""
    with open(osp.join(path, 'meta.lock'), 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class FeatureBankWriter:
    """Write video entries into a (new or partly written) feature bank.

    :meth:`put` buffers; the buffer is committed, one transaction per
    shard, every ``commit_every`` videos, ``commit_bytes`` bytes or
    ``commit_seconds`` seconds, and by :meth:`flush`, :meth:`finalize` and
    :meth:`close`. A committed entry is complete; a process killed between
    commits loses its uncommitted videos, which a re-run extracts again.

    Args:
        path (str): The store folder; created when missing.
        settings (dict): The :data:`IDENTITY_KEYS` and any other metadata
            (``teacher_ckpt``); an existing store must match them.
        shards (int, optional): Shards of a new store (default
            :data:`DEFAULT_SHARDS`); an existing store keeps its own.
        commit_every (int): Videos per commit.
        commit_seconds (float): Longest time between commits.
        commit_bytes (int): Largest buffer before a commit.
        map_size (int): Bytes of address space for each shard's map.
    """

    def __init__(self,
                 path: PathLike,
                 settings: Dict,
                 shards: Optional[int] = None,
                 commit_every: int = 256,
                 commit_seconds: float = 10.0,
                 commit_bytes: int = 256 << 20,
                 map_size: int = MAP_SIZE) -> None:
        path = str(path)
        missing = [k for k in IDENTITY_KEYS if k not in settings]
        if missing:
            raise KeyError(f'teacher-bank settings lack {missing}')
        if osp.exists(path) and not osp.isdir(path):
            raise FileExistsError(f'{path} exists and is not a teacher '
                                  'feature bank folder')
        if shards is not None and shards < 1:
            raise ValueError(f'shards must be >= 1, got {shards}')
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.settings = _jsonable(settings)
        # Ranks starting together: the first creates the metadata, the
        # others find it under the lock.
        with _meta_lock(path):
            meta = read_meta(path)
            if meta is None and set(os.listdir(path)) - {'meta.lock'}:
                raise FileExistsError(
                    f'{path} is a non-empty folder without {META_FILE}: '
                    'not a teacher feature bank')
            if meta is None:
                meta = dict(
                    {k: v for k, v in self.settings.items()},
                    shards=shards or DEFAULT_SHARDS,
                    tag=identity_tag(self.settings),
                    data_prefixes=[],
                    complete=False,
                    created=_creation_info(),
                    updated_at=None)
                write_meta(path, meta)
            else:
                _check_compatible(meta, self.settings, path)
        self.shards, self.tag = meta['shards'], meta['tag']
        self.dtype = meta['dtype']
        self.map_size = map_size
        self.commit_every, self.commit_seconds = commit_every, commit_seconds
        self.commit_bytes = commit_bytes
        self._envs: Dict[int, lmdb.Environment] = {}
        self._pending: Dict[int, list] = {}
        self._max_abs: Dict[int, float] = {}
        self._dim = meta.get('dim')
        self._count = self._bytes = 0
        self._last = time.monotonic()
        # LMDB refuses a second environment of a file in one process.
        close_readers(path)

    def shards_of(self, rank: int, world_size: int) -> list:
        """The shards rank ``rank`` of ``world_size`` writes: every shard
        has one writer, and ranks share them round-robin."""
        return list(range(rank, self.shards, world_size))

    def shard_of(self, key: str) -> int:
        return shard_of(key.encode(), self.shards)

    def _env(self, index: int, create: bool = True):
        env = self._envs.get(index)
        if env is None:
            folder = osp.join(self.path, shard_name(index))
            if not create and not osp.isfile(osp.join(folder, 'data.mdb')):
                return None
            # metasync=False: one flush per commit instead of two; a
            # system crash may undo the last commit, never corrupt the
            # shard (LMDB's MDB_NOMETASYNC).
            env = self._envs[index] = lmdb.open(
                folder, map_size=self.map_size, subdir=True,
                metasync=False)
        return env

    def done_keys(self) -> set:
        """Keys of the committed videos."""
        done = set()
        for index in range(self.shards):
            env = self._env(index, create=False)
            if env is None:
                continue
            with env.begin() as txn:
                done.update(
                    k.decode()
                    for k in txn.cursor().iternext(values=False)
                    if k != SHARD_KEY)
        return done

    def put(self, key: str, total_frames: int, feats: np.ndarray) -> None:
        """Add one video's ``(W, D)`` features (committed with the next
        batch)."""
        kb = key.encode()
        if not kb or kb.startswith(b'\x00'):
            raise ValueError(f'{key!r} is not a video key')
        feats = np.asarray(feats)
        if feats.ndim == 2 and self._dim not in (None, feats.shape[1]):
            raise ValueError(
                f'teacher feature bank {self.path} holds {self._dim}-d '
                f'features, {key} has {feats.shape[1]}')
        value, largest = encode_entry(kb, feats, total_frames, self.dtype,
                                      self.tag)
        self._dim = int(feats.shape[1])
        index = shard_of(kb, self.shards)
        self._pending.setdefault(index, []).append((kb, value))
        # The largest stored magnitude: the bound readers check.
        self._max_abs[index] = max(self._max_abs.get(index, 0.0), largest)
        self._count += 1
        self._bytes += len(value)
        if self._count >= self.commit_every or \
                self._bytes >= self.commit_bytes or \
                time.monotonic() - self._last >= self.commit_seconds:
            self.flush()

    def flush(self) -> None:
        """Commit the buffered entries, one transaction per shard."""
        pending, self._pending = self._pending, {}
        for index, items in sorted(pending.items()):
            with self._env(index).begin(write=True) as txn:
                raw = txn.get(SHARD_KEY)
                largest = self._max_abs[index]
                if raw is not None:
                    dim, stored = shard_record(raw)
                    if dim != self._dim:
                        raise ValueError(
                            f'teacher feature bank {self.path} '
                            f'{shard_name(index)} holds {dim}-d features, '
                            f'this extraction gives {self._dim}')
                    largest = max(largest, stored)
                txn.put(
                    SHARD_KEY,
                    json.dumps(dict(dim=self._dim,
                                    max_abs=largest)).encode())
                for kb, value in items:
                    txn.put(kb, value)
        self._max_abs.clear()
        self._count = self._bytes = 0
        self._last = time.monotonic()

    def finalize(self, expected: Sequence[str],
                 data_prefixes: Sequence[str]) -> Dict:
        """Commit, then record in ``meta.json`` the store's width, the
        largest magnitude stored, the video count, the data prefixes and
        whether ``expected`` is complete. Reads keys and the shards' small
        records, never stored values.

        Every rank calls this when done; the last one sees every entry.

        Args:
            expected (Sequence[str]): The keys this run was asked for.
            data_prefixes (Sequence[str]): The datasets' data prefixes.

        Returns:
            dict: The updated metadata, or an empty dict when nothing has
            been committed yet (by any rank).
        """
        self.flush()
        with _meta_lock(self.path):
            meta = read_meta(self.path)
            dims, largest, stored = set(), 0.0, set()
            for index in range(self.shards):
                env = self._env(index, create=False)
                if env is None:
                    continue
                with env.begin() as txn:
                    raw = txn.get(SHARD_KEY)
                    if raw is not None:
                        dim, value = shard_record(raw)
                        dims.add(dim)
                        largest = max(largest, value)
                    stored.update(
                        k.decode()
                        for k in txn.cursor().iternext(values=False)
                        if k != SHARD_KEY)
            if not stored:
                return {}
            if len(dims) != 1:
                raise ValueError(f'teacher feature bank {self.path}: its '
                                 f'shards hold features of widths {dims}')
            meta.update(
                dim=dims.pop(),
                max_abs=largest,
                videos=len(stored),
                data_prefixes=sorted(
                    set(meta['data_prefixes']) | set(data_prefixes)),
                complete=all(k in stored for k in expected),
                updated_at=_now())
            write_meta(self.path, meta)
        return meta

    def close(self) -> None:
        """Commit what is buffered and close the shards."""
        try:
            if self._pending:
                self.flush()
        finally:
            for env in self._envs.values():
                env.close()
            self._envs.clear()


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
