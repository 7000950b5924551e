"""tools/convert_teacher_bank.py (version 2 -> current) and
tools/verify_teacher_bank.py, as real subprocesses."""
import json
import struct
import zlib

import lmdb
import numpy as np

from hallucinet_plugin.feature_bank import FeatureBank
from hallucinet_plugin.feature_bank.bank_format import IDENTITY_KEYS
from tests.conftest import run_tool
from tests.datasets.transforms.test_load_teacher_features import ramp_track

TRACKS = {f'v{i}.mp4': ramp_track(60, offset=i) for i in range(5)}


def write_v2_store(path, tracks, damage=None):
    """A version-2 store as the previous release wrote it."""
    meta = {k: None for k in IDENTITY_KEYS}
    meta.update(format='hallucinet-teacher-bank', format_version=2,
                teacher_config='{}', teacher_ckpt_sha256='0' * 64,
                teacher_pool='avg', clip_len=8, frame_interval=1, stride=4,
                out_of_bound_opt='loop', dtype='float32', view={},
                data_prefixes=['/data/videos'], complete=True)
    env = lmdb.open(str(path), subdir=True)
    with env.begin(write=True) as txn:
        txn.put(b'__meta__', json.dumps(meta).encode())
        for key, (total, feats) in tracks.items():
            data = np.ascontiguousarray(feats, '<f4').tobytes()
            if key == damage:
                data = data[:-1] + bytes([data[-1] ^ 1])
            header = struct.pack('<4sIIII', b'HNB2', total, *feats.shape,
                                 zlib.crc32(np.ascontiguousarray(
                                     feats, '<f4').tobytes()))
            txn.put(key.encode(), header + data)
    env.close()
    return str(path)


def test_convert_then_verify(tmp_path):
    old = write_v2_store(tmp_path / 'old.lmdb', TRACKS)
    new = str(tmp_path / 'new.lmdb')
    proc = run_tool('tools/convert_teacher_bank.py', old, new)
    assert '5 videos converted' in proc.stdout and 'complete' in proc.stdout
    bank = FeatureBank(new)
    for key, (total, feats) in TRACKS.items():
        got_total, got = bank.get(key)
        assert got_total == total
        np.testing.assert_array_equal(got, feats)
    assert bank.meta['data_prefixes'] == ['/data/videos']
    bank.close()
    proc = run_tool('tools/verify_teacher_bank.py', new, '--no-progress')
    assert '5 videos checked, every row intact' in proc.stdout


def test_damage_is_refused_by_both(tmp_path):
    old = write_v2_store(tmp_path / 'old.lmdb', TRACKS, damage='v3.mp4')
    proc = run_tool('tools/convert_teacher_bank.py', old,
                    str(tmp_path / 'new.lmdb'), check=False)
    assert proc.returncode == 1
    assert 'old.lmdb[v3.mp4]: damaged entry' in proc.stderr
    good = write_v2_store(tmp_path / 'good.lmdb', TRACKS)
    new = str(tmp_path / 'converted.lmdb')
    run_tool('tools/convert_teacher_bank.py', good, new)
    bank = FeatureBank(new)
    data = f"{bank._env(b'v2.mp4').env.path()}/data.mdb"
    bank.close()
    # One bit of v2.mp4's first row.
    raw = open(data, 'rb').read()
    at = raw.find(np.ascontiguousarray(TRACKS['v2.mp4'][1], '<f4').tobytes())
    assert at > 0
    with open(data, 'r+b') as f:
        f.seek(at + 5)
        f.write(bytes([raw[at + 5] ^ 2]))
    proc = run_tool('tools/verify_teacher_bank.py', new, '--no-progress',
                    check=False)
    assert proc.returncode == 1
    assert 'DAMAGED' in proc.stderr and 'v2.mp4]: row 0 checksum' in \
        proc.stderr
