"""Convert a version-2 teacher feature bank (one LMDB environment, a
CRC-32 per entry) into the current format (shards, per-row checksums,
entries bound to their video and teacher, magnitude bound), checking each
old entry's checksum on the way. No teacher runs.

Example::

    python tools/convert_teacher_bank.py work_dirs/old_bank.lmdb \\
        work_dirs/bank.lmdb
"""
import argparse
import json
import os.path as osp
import struct
import sys
import zlib

import lmdb
import numpy as np
from mmengine.utils import ProgressBar

from hallucinet_plugin.feature_bank import FeatureBankWriter
from hallucinet_plugin.feature_bank.bank_format import (
    DTYPES,
    FORMAT_VERSION,
    IDENTITY_KEYS,
    read_meta,
    write_meta,
)

# Version 2: one value per video, '<4sIIII' (b'HNB2', frames, windows, dim,
# CRC-32 of the values) and the values; metadata under b'__meta__'.
V2_HEADER = struct.Struct('<4sIIII')
V2_META = b'__meta__'


def v2_entries(env: lmdb.Environment, dtype: str, path: str):
    """``(key, frames, (W, D) values)`` of a version-2 store, checked."""
    with env.begin() as txn:
        for key, value in txn.cursor().iternext():
            if key == V2_META:
                continue
            magic, frames, windows, dim, crc = V2_HEADER.unpack_from(value)
            data = value[V2_HEADER.size:]
            if magic != b'HNB2' or zlib.crc32(data) != crc or \
                    len(data) != windows * dim * np.dtype(
                        DTYPES[dtype]).itemsize:
                raise ValueError(f'{path}[{key.decode()}]: damaged entry; '
                                 'extract the store again instead')
            yield key.decode(), frames, np.frombuffer(
                data, DTYPES[dtype]).reshape(windows, dim)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('old', help='the version-2 store')
    parser.add_argument('new', help='the store to write (must not exist)')
    parser.add_argument('--shards', type=int, default=None,
                        help='shards of the new store (default 8)')
    args = parser.parse_args(argv)
    if not osp.isfile(osp.join(args.old, 'data.mdb')):
        sys.exit(f'{args.old}: not a version-2 feature bank (no data.mdb)')
    if osp.exists(args.new):
        sys.exit(f'{args.new} exists; give a new folder')
    env = lmdb.open(args.old, readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            raw = txn.get(V2_META)
        if raw is None:
            sys.exit(f'{args.old}: no __meta__; not a feature bank')
        old = json.loads(raw)
        if old.get('format_version') != 2:
            sys.exit(f'{args.old}: format version '
                     f'{old.get("format_version")!r}, not 2')
        settings = {k: old[k] for k in IDENTITY_KEYS}
        settings['format_version'] = FORMAT_VERSION
        settings['teacher_ckpt'] = old.get('teacher_ckpt')
        writer = FeatureBankWriter(args.new, settings, shards=args.shards)
        keys = []
        bar = ProgressBar(env.stat()['entries'] - 1, file=sys.stderr)
        try:
            for key, frames, feats in v2_entries(env, old['dtype'],
                                                 args.old):
                writer.put(key, frames, feats)
                keys.append(key)
                bar.update()
            writer.finalize(keys, old.get('data_prefixes', []))
        finally:
            writer.close()
    finally:
        env.close()
    meta = read_meta(args.new)
    if not old.get('complete'):
        meta = dict(meta, complete=False)
        write_meta(args.new, meta)
    print(f'\n{args.new}: {len(keys)} videos converted from {args.old} '
          f'({"complete" if meta["complete"] else "incomplete"})')


if __name__ == '__main__':
    main()
