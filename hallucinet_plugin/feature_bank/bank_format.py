"""The teacher feature bank's on-disk format (version 3): a folder of
``meta.json`` and LMDB shards. See docs/user_guides/feature_bank.md.

Entry (one video, the value under its key in shard
``crc32(key) % shards``)::

    <4sHHIIIII  magic b'HNB3', version, flags (0), frame count, windows W,
                dim D, CRC-32 of the key, the store's identity tag
    W x <I      CRC-32 of each row
    <I          CRC-32 of all the above (the header)
    W x D       values, little-endian float16 or float32, row-major; row i
                is the clip that starts at frame i * stride

A read checks the header (its CRC, the key, the identity tag) and the
CRCs of the rows it uses, nothing else: cost independent of W.
``meta.json`` holds the identity settings, the bank's geometry and bounds,
and a sha256 of itself.
"""
import hashlib
import json
import os
import os.path as osp
import struct
import tempfile
import zlib
from typing import Dict, Optional, Tuple

import numpy as np
import torch

FORMAT = 'hallucinet-teacher-bank'
# 3: sharded LMDB folder + meta.json; per-row CRCs, entries bound to their
# key and to the store's identity; bounds recorded at extraction.
FORMAT_VERSION = 3
DTYPES = {'float16': '<f2', 'float32': '<f4'}
# Largest magnitude a stored feature may have: float16's range, so that
# both dtypes hold every accepted value.
MAX_ABS = float(np.finfo(np.float16).max)
# Settings that change the stored features: a store made with other values
# is refused rather than mixed.
IDENTITY_KEYS = ('format', 'format_version', 'teacher_config',
                 'teacher_ckpt_sha256', 'teacher_layer', 'teacher_pool',
                 'clip_len', 'frame_interval', 'stride', 'out_of_bound_opt',
                 'dtype', 'view')
META_FILE = 'meta.json'
# Per-shard record (dim, largest magnitude written); video keys never start
# with a NUL byte.
SHARD_KEY = b'\x00shard'
_FIXED = struct.Struct('<4sHHIIIII')
_MAGIC = b'HNB3'
_CRC = struct.Struct('<I')


def shard_name(index: int) -> str:
    return f'shard-{index:03d}'


def shard_of(key: bytes, shards: int) -> int:
    """The shard a key lives in (stable across processes and runs)."""
    return zlib.crc32(key) % shards


def identity_tag(settings: Dict) -> int:
    """CRC-32 of the identity settings: every entry carries its store's."""
    ident = {k: settings.get(k) for k in IDENTITY_KEYS}
    return zlib.crc32(json.dumps(ident, sort_keys=True).encode())


def check_values(feats: np.ndarray, where: str,
                 bound: float = MAX_ABS) -> None:
    """Refuse non-finite features and values beyond ``bound``: a target the
    hallucination loss would silently saturate on is a broken teacher or a
    damaged store, not a feature.

    Args:
        feats (np.ndarray): Any shape.
        where (str): What they are, for the message (store and video).
        bound (float): The largest magnitude accepted (the store's, as
            recorded at extraction, or :data:`MAX_ABS`).
    """
    values = np.asarray(feats, dtype=np.float32)
    bad = ~np.isfinite(values) | (np.abs(values) > bound)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f'{where}: {int(bad.sum())} values are not finite or beyond '
            f'+-{bound:g}, the largest magnitude the teacher gave at '
            f'extraction (first at {first}: {values[first]}); re-extract '
            'with tools/extract_teacher_features.py')


def encode_entry(key: bytes, feats: np.ndarray, total_frames: int,
                 dtype: str, tag: int) -> Tuple[bytes, float]:
    """One video's value: header and ``(W, D)`` features as ``dtype``.

    Returns:
        tuple[bytes, float]: The value and the largest magnitude it stores
        (after rounding to ``dtype``).
    """
    values = np.ascontiguousarray(feats, dtype=np.float32)
    if values.ndim != 2 or not values.shape[0]:
        raise ValueError(f'features must be (windows >= 1, dim), got shape '
                         f'{values.shape}')
    largest = float(np.abs(values).max())
    if not largest <= MAX_ABS:  # NaN too
        check_values(values, 'teacher features to store')
    if dtype == 'float16':
        # torch's conversion is vectorised (numpy's is not); rounding is
        # monotonic, so the largest magnitude rounds to the stored one.
        data = torch.from_numpy(values).half().numpy().tobytes()
        largest = float(np.float16(largest))
    else:
        data = values.tobytes()
    windows, dim = values.shape
    size = len(data) // windows
    view = memoryview(data)
    rows = struct.pack(f'<{windows}I', *(
        zlib.crc32(view[i * size:(i + 1) * size]) for i in range(windows)))
    head = _FIXED.pack(_MAGIC, FORMAT_VERSION, 0, total_frames, windows, dim,
                       zlib.crc32(key), tag) + rows
    return head + _CRC.pack(zlib.crc32(head)) + data, largest


class Entry:
    """A stored entry, its header checked (CRC, key, identity tag), its
    rows read on demand, each against its CRC.

    Args:
        value (buffer): The LMDB value (a memoryview is read in place).
        key (bytes): The key it was stored under.
        itemsize (int): Bytes per stored value (2: float16, 4: float32).
        tag (int): The store's identity tag.
        store (str): The store, for messages.
    """
    __slots__ = ('value', 'total_frames', 'windows', 'dim', 'row_bytes',
                 'start', 'key', 'store')

    def __init__(self, value, key: bytes, itemsize: int, tag: int,
                 store: str) -> None:
        self.key, self.store = key, store
        size = len(value)
        if size < _FIXED.size:
            raise ValueError(f'{self.where}: truncated teacher-bank entry '
                             f'({size} bytes)')
        magic, version, _, total, windows, dim, key_crc, entry_tag = \
            _FIXED.unpack_from(value)
        if magic != _MAGIC or version != FORMAT_VERSION:
            raise ValueError(f'{self.where}: not a version-'
                             f'{FORMAT_VERSION} teacher-bank entry')
        end = _FIXED.size + 4 * windows
        if size != end + 4 + windows * dim * itemsize:
            raise ValueError(
                f'{self.where}: the entry holds {size} bytes, its header '
                f'announces {windows} x {dim} values of {itemsize} bytes: '
                'damaged')
        if _CRC.unpack_from(value, end)[0] != zlib.crc32(value[:end]):
            raise ValueError(f'{self.where}: header checksum mismatch '
                             '(frame count, shape or row checksums '
                             'damaged)')
        if key_crc != zlib.crc32(key):
            raise ValueError(f'{self.where}: the entry was written for '
                             'another video (copied under this key?)')
        if entry_tag != tag:
            raise ValueError(
                f'{self.where}: the entry was written by another teacher or '
                'settings (identity tag differs from the store\'s)')
        self.value = value
        self.total_frames, self.windows, self.dim = total, windows, dim
        self.row_bytes = dim * itemsize
        self.start = end + 4

    @property
    def where(self) -> str:
        """Store and video, for messages."""
        return f'{self.store}[{self.key.decode()}]'

    def rows(self, index) -> bytearray:
        """The stored bytes of rows ``index`` (a copy, valid after the
        transaction), each checked against its CRC."""
        value, size, start = self.value, self.row_bytes, self.start
        if len(index) == 1:  # the common case: one segment
            i = index[0]
            row = value[start + i * size:start + (i + 1) * size]
            if zlib.crc32(row) == _CRC.unpack_from(value,
                                                   _FIXED.size + 4 * i)[0]:
                return bytearray(row)
        parts = []
        for i in index:
            row = value[start + i * size:start + (i + 1) * size]
            if zlib.crc32(row) != _CRC.unpack_from(value,
                                                   _FIXED.size + 4 * i)[0]:
                raise ValueError(
                    f'{self.where}: row {int(i)} checksum mismatch: the '
                    'entry was damaged after it was written (disk or '
                    'copy); re-extract it with '
                    'tools/extract_teacher_features.py')
            parts.append(row)
        return bytearray().join(parts)


def to_float32(data: bytearray, dtype: str, dim: int) -> np.ndarray:
    """Stored bytes (:meth:`Entry.rows`) as a ``(rows, dim)`` float32
    array."""
    values = np.frombuffer(data, DTYPES[dtype])
    if dtype == 'float16':
        values = values.astype(np.float32)
    return values.reshape(-1, dim)


# ------------------------------------------------------------ meta.json
def _digest(meta: Dict) -> str:
    body = {k: v for k, v in meta.items() if k != 'sha256'}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_meta(path: str) -> Optional[Dict]:
    """A store's metadata, checked; None when the store has none yet.

    Raises:
        ValueError: Naming the store, for a version-2 store, damaged or
            foreign metadata.
    """
    file = osp.join(path, META_FILE)
    if not osp.isfile(file):
        if osp.isfile(osp.join(path, 'data.mdb')):
            raise ValueError(
                f'{path} is a version-2 teacher feature bank (one LMDB '
                'environment); this version reads version 3. Convert it: '
                f'python tools/convert_teacher_bank.py {path} NEW_BANK '
                '(or re-extract with tools/extract_teacher_features.py)')
        return None
    try:
        with open(file, 'rb') as f:
            meta = json.loads(f.read())
        if not isinstance(meta, dict):
            raise ValueError('not a JSON object')
    except ValueError as e:
        raise ValueError(f'teacher feature bank {path}: {file} is damaged '
                         f'({e}); re-extract the store') from None
    if meta.get('format') != FORMAT or \
            meta.get('format_version') != FORMAT_VERSION:
        raise ValueError(
            f'{path}: format {meta.get("format")!r} version '
            f'{meta.get("format_version")!r}, expected {FORMAT!r} version '
            f'{FORMAT_VERSION}; re-extract it with '
            'tools/extract_teacher_features.py')
    if meta.get('sha256') != _digest(meta):
        raise ValueError(
            f'teacher feature bank {path}: {file} does not match its own '
            'checksum (edited or damaged); re-extract the store, or restore '
            'the file')
    return meta


def write_meta(path: str, meta: Dict) -> None:
    """Write ``meta`` (with its sha256) atomically."""
    meta = dict(meta, sha256=None)
    meta['sha256'] = _digest(meta)
    fd, tmp = tempfile.mkstemp(dir=path, prefix='.meta.', suffix='.json')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, osp.join(path, META_FILE))
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def shard_record(raw) -> Tuple[int, float]:
    """``(dim, largest magnitude)`` of a shard's record."""
    record = json.loads(bytes(raw))
    return int(record['dim']), float(record['max_abs'])
