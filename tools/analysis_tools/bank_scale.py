"""The teacher feature bank at the sizes real users have
(``tools/benchmark.py --preset bank-scale``).

For each (N videos, W windows): a store of N synthetic videos written
through the public :class:`FeatureBankWriter`, and the same bytes as one
flat file read through ``np.memmap`` (the reference). Measured in one run,
the two methods interleaved, so compare within a row:

Both files are read once before the reads are timed: the page cache holds
them, as on a machine whose memory holds the bank.

- ``reads_per_s`` / ``memmap_reads_per_s``: random samples (a random video,
  one clip start) through :class:`LoadTeacherFeatures` and through the same
  steps on the memmap (key from the file name, nearest window, rows copied
  as float32); ``read_ratio`` = ours / memmap;
- ``loader_ratio``: the same through a ``DataLoader`` with 2 workers,
  batch 64;
- ``open_ms`` / ``open_rss_mb``: a fresh process opening the store and
  reading one sample, and the resident memory that adds;
- ``writes_per_s``: videos per second written (batched commits, one
  process), ``writes_per_s_2proc`` (2 processes on disjoint shards),
  ``write_ratio`` against the previous format's writer (version 2: one
  LMDB environment, one committed transaction per video, a CRC over the
  whole entry), timed on the first videos, and
  ``plain_file_writes_per_s``: the same bytes appended to one plain file
  (the disk's own rate, which bounds every writer).
"""
import json
import multiprocessing
import os
import os.path as osp
import random
import shutil
import struct
import subprocess
import sys
import time
import zlib
from typing import Callable, Dict, List, Sequence

import lmdb
import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from torch.utils.data import DataLoader, Dataset

from hallucinet_plugin.feature_bank import FeatureBankWriter
from hallucinet_plugin.feature_bank.bank_format import (
    FORMAT,
    FORMAT_VERSION,
)
from hallucinet_plugin.feature_bank.geometry import nearest_windows

PREFIX = '/data/videos'
CLIP_LEN, STRIDE = 16, 4
SETTINGS = dict(
    format=FORMAT,
    format_version=FORMAT_VERSION,
    teacher_config='{"bank-scale": "synthetic"}',
    teacher_ckpt_sha256='0' * 64,
    teacher_layer=None,
    teacher_pool='avg',
    clip_len=CLIP_LEN,
    frame_interval=1,
    stride=STRIDE,
    out_of_bound_opt='loop',
    dtype='float16',
    view={})


def _key(i: int) -> str:
    return f'class_{i % 400:03d}/video_{i:07d}.mp4'


def _frames(windows: int) -> int:
    return (windows - 1) * STRIDE + CLIP_LEN


def _pool(windows: int, dim: int) -> List[np.ndarray]:
    """Float32 features, as the teacher gives them."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal((windows, dim), dtype=np.float32)
            for _ in range(16)]


def _write(path: str, keys: Sequence[str], windows: int, dim: int,
           rank: int = 0, world: int = 1, commit_every: int = 256) -> int:
    """Write the videos of the shards of ``rank``; the count written."""
    pool = _pool(windows, dim)
    writer = FeatureBankWriter(path, SETTINGS, commit_every=commit_every)
    mine = set(writer.shards_of(rank, world))
    written = 0
    try:
        for i, key in enumerate(keys):
            if writer.shard_of(key) in mine:
                writer.put(key, _frames(windows), pool[i % len(pool)])
                written += 1
        writer.finalize(keys, [PREFIX])
    finally:
        writer.close()
    return written


def _write_v2(path: str, keys: Sequence[str], windows: int,
              dim: int) -> None:
    """The previous format's writer, for the write ratio: one fsynced
    transaction per video, the whole entry's CRC, numpy's conversion."""
    pool = _pool(windows, dim)
    env = lmdb.open(path, map_size=1 << 40, subdir=True)
    try:
        for i, key in enumerate(keys):
            feats = pool[i % len(pool)]
            values = feats.astype(np.float32)
            assert np.isfinite(values).all()
            data = np.ascontiguousarray(feats, '<f2').tobytes()
            value = struct.pack('<4sIIII', b'HNB2', _frames(windows),
                                windows, dim, zlib.crc32(data)) + data
            with env.begin(write=True) as txn:
                txn.put(key.encode(), value)
    finally:
        env.close()


def _write_rank(args) -> int:
    torch.set_num_threads(1)
    return _write(*args)


def write_stores(root: str, n: int, windows: int, dim: int) -> Dict:
    """The store (one process), its 2-process twin and the memmap
    reference; write rates."""
    keys = [_key(i) for i in range(n)]
    store = osp.join(root, 'bank.lmdb')
    start = time.perf_counter()
    _write(store, keys, windows, dim)
    one = n / (time.perf_counter() - start)
    twin = osp.join(root, 'bank2.lmdb')
    ctx = multiprocessing.get_context('fork')
    start = time.perf_counter()
    with ctx.Pool(2) as pool:
        pool.map(_write_rank, [(twin, keys, windows, dim, r, 2)
                               for r in range(2)])
    two = n / (time.perf_counter() - start)
    shutil.rmtree(twin)
    # The previous format's writer, on the first videos.
    few = keys[:min(n, 2000 if windows <= 8 else 500)]
    single = osp.join(root, 'v2.lmdb')
    start = time.perf_counter()
    _write_v2(single, few, windows, dim)
    per_video = len(few) / (time.perf_counter() - start)
    shutil.rmtree(single)
    # The reference: the same rows, one flat file, an in-memory index.
    pool = _pool(windows, dim)
    flat = osp.join(root, 'flat.f16')
    rows = [p.astype(np.float16).tobytes() for p in pool]
    start = time.perf_counter()
    with open(flat, 'wb') as f:
        for i in range(n):
            f.write(rows[i % len(rows)])
        f.flush()
        os.fsync(f.fileno())
    # The disk's own rate for these bytes: what any writer is bound by.
    plain = n / (time.perf_counter() - start)
    return dict(store=store, flat=flat, keys=keys, writes_per_s=one,
                plain_file_writes_per_s=plain,
                writes_per_s_2proc=two, write_ratio=one / per_video,
                v2_writes_per_s=per_video)


def _warm(*paths: str) -> None:
    """Read every file once, so that both readers start from the page
    cache (what "memory speed" means; a cold store is the disk's)."""
    for path in paths:
        files = [path] if osp.isfile(path) else [
            osp.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for name in files:
            with open(name, 'rb') as f:
                while f.read(16 << 20):
                    pass


class MemmapFeatures:
    """The reference reader: :class:`LoadTeacherFeatures`' steps on an
    ``np.memmap`` of the same rows (opened lazily, once per process)."""

    def __init__(self, flat: str, keys: Sequence[str], windows: int,
                 dim: int) -> None:
        self.flat, self.windows, self.dim = flat, windows, dim
        self.index = {k: i * windows for i, k in enumerate(keys)}
        self.total = _frames(windows)
        self.rows = None

    def __call__(self, results: Dict) -> Dict:
        if self.rows is None:
            self.rows = np.memmap(self.flat, np.float16, 'r').reshape(
                -1, self.dim)
        key = results['filename'][len(PREFIX) + 1:]
        first = self.index[key]
        starts = np.asarray(results['clip_starts'])
        index = nearest_windows(starts, STRIDE, self.windows)
        results['teacher_feats'] = self.rows[first + index].astype(
            np.float32)
        results['teacher_clip_starts'] = index * STRIDE
        return results


def _samples(keys: Sequence[str], windows: int, count: int,
             seed: int) -> List[Dict]:
    rng = random.Random(seed)
    last = _frames(windows) - CLIP_LEN
    return [
        dict(filename=f'{PREFIX}/{rng.choice(keys)}',
             clip_starts=np.array([rng.randint(0, last)]))
        for _ in range(count)
    ]


def _rate(fn: Callable, samples: List[Dict]) -> float:
    start = time.perf_counter()
    for sample in samples:
        fn(dict(sample))
    return len(samples) / (time.perf_counter() - start)


def read_rates(ours: Callable, ref: Callable, keys: Sequence[str],
               windows: int, reads: int, rounds: int = 6) -> Dict:
    """Samples per second of both readers, interleaved (the first read of
    each warms its caches, and which goes first alternates)."""
    for fn in (ours, ref):
        fn(_samples(keys, windows, 1, 0)[0])
    times = {'ours': 0.0, 'ref': 0.0}
    per_round = max(1, reads // rounds)
    for r in range(rounds):
        samples = _samples(keys, windows, per_round, r + 1)
        order = [('ours', ours), ('ref', ref)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            times[name] += per_round / _rate(fn, samples)
    total = per_round * rounds
    return dict(reads_per_s=total / times['ours'],
                memmap_reads_per_s=total / times['ref'])


class _Samples(Dataset):

    def __init__(self, fn: Callable, samples: List[Dict]) -> None:
        self.fn, self.samples = fn, samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.fn(dict(self.samples[i]))['teacher_feats']


def loader_ratio(ours: Callable, ref: Callable, keys: Sequence[str],
                 windows: int, count: int, rounds: int = 2) -> Dict:
    """Samples per second through a DataLoader (2 workers, batch 64) of
    each reader, interleaved."""
    times = {'ours': 0.0, 'ref': 0.0}
    samples = _samples(keys, windows, count, 99)
    for r in range(rounds):
        order = [('ours', ours), ('ref', ref)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            loader = DataLoader(_Samples(fn, samples), batch_size=64,
                                num_workers=2)
            start = time.perf_counter()
            for _ in loader:
                pass
            times[name] += time.perf_counter() - start
    return dict(loader_samples_per_s=count * rounds / times['ours'],
                memmap_loader_samples_per_s=count * rounds / times['ref'],
                loader_ratio=times['ref'] / times['ours'])


_OPEN = '''
import json, sys, time
import numpy as np
from hallucinet_plugin.feature_bank import FeatureBank

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
bank = FeatureBank(sys.argv[1])
key = sys.argv[2]
before = rss()
start = time.perf_counter()
bank.lookup(key, np.array([0]))
seconds = time.perf_counter() - start
print(json.dumps(dict(open_ms=seconds * 1e3,
                      open_rss_mb=(rss() - before) / 2**20)))
'''


def open_cost(store: str, key: str) -> Dict:
    """Opening the store and reading one sample in a fresh process."""
    proc = subprocess.run([sys.executable, '-c', _OPEN, store, key],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bank_scale(root: str, sizes: Sequence[int], windows: Sequence[int],
               w72_size: int, dim: int, reads: int, loader_samples: int,
               log: Callable = print) -> List[Dict]:
    """One row per (N, W): ``sizes`` at the smallest of ``windows``, and
    ``w72_size`` videos at each other W."""
    plan = [(n, min(windows)) for n in sizes] + [
        (w72_size, w) for w in sorted(windows) if w != min(windows)]
    rows = []
    for n, w in plan:
        work = osp.join(root, f'n{n}_w{w}')
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        log(f'bank-scale: N={n} W={w} D={dim}: writing')
        made = write_stores(work, n, w, dim)
        ours = TRANSFORMS.build(dict(type='LoadTeacherFeatures',
                                     store=made['store'],
                                     data_prefix=PREFIX))
        ref = MemmapFeatures(made['flat'], made['keys'], w, dim)
        log(f'bank-scale: N={n} W={w}: reading')
        _warm(made['store'], made['flat'])
        row = dict(n=n, windows=w, dim=dim)
        row.update(read_rates(ours, ref, made['keys'], w, reads))
        row['read_ratio'] = row['reads_per_s'] / row['memmap_reads_per_s']
        row.update(loader_ratio(ours, ref, made['keys'], w, loader_samples))
        row.update(open_cost(made['store'], made['keys'][0]))
        row.update({k: made[k] for k in ('writes_per_s',
                                         'writes_per_s_2proc', 'write_ratio',
                                         'v2_writes_per_s',
                                         'plain_file_writes_per_s')})
        row['gb'] = sum(
            osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(
                made['store']) for f in fs) / 1e9
        ours.bank.close()
        shutil.rmtree(work)
        log('bank-scale: ' + json.dumps(
            {k: round(v, 3) if isinstance(v, float) else v
             for k, v in row.items()}))
        rows.append(row)
    return rows


def format_bank_scale(rows: List[Dict]) -> str:
    """The rows as a Markdown table."""
    head = ('| N | W | reads/s | memmap reads/s | read ratio | loader ratio '
            '| open ms | open MB | writes/s | 2 processes | vs version 2 '
            '| plain file writes/s | GB |\n' + '| ---' * 13 + ' |')
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['windows']} | {r['reads_per_s']:,.0f} | "
            f"{r['memmap_reads_per_s']:,.0f} | {r['read_ratio']:.2f} | "
            f"{r['loader_ratio']:.2f} | {r['open_ms']:.1f} | "
            f"{r['open_rss_mb']:.1f} | {r['writes_per_s']:,.0f} | "
            f"{r['writes_per_s_2proc']:,.0f} | {r['write_ratio']:.1f}x | "
            f"{r['plain_file_writes_per_s']:,.0f} | {r['gb']:.2f} |")
    return '\n'.join(lines)
