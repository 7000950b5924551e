"""A damaged feature store gives an error naming it, never a signal, and
never trains on non-finite or absurd targets."""
import os
import os.path as osp
import subprocess
import sys

import lmdb
import numpy as np
import pytest

from hallucinet_plugin.feature_bank.store import (
    _HEADER,
    MAX_ABS,
    FeatureBank,
    _close_reader,
    pack_track,
)
from tests.conftest import REPO
from tests.datasets.transforms.test_load_teacher_features import (
    DIM,
    ramp_track,
    write_bank,
)

# Enough videos that the store spans many pages, so that cutting its file
# leaves pages that the index still points to.
TRACKS = {f'v{i:03d}.mp4': ramp_track(400, offset=i) for i in range(40)}

READ_ALL = '''
import sys
from hallucinet_plugin.feature_bank.store import FeatureBank
import numpy as np
bank = FeatureBank(sys.argv[1])
for key in bank.keys():
    bank.lookup(key, np.array([0]))
print('read', len(bank))
'''


def _read_all(store):
    return subprocess.run([sys.executable, '-c', READ_ALL, store],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=120)


def test_truncated_store_is_named_not_a_signal(tmp_path):
    store = write_bank(tmp_path / 'bank.lmdb', TRACKS)
    whole = _read_all(store)
    assert whole.returncode == 0, whole.stderr
    assert f'read {len(TRACKS)}' in whole.stdout
    data = osp.join(store, 'data.mdb')
    with open(data, 'r+b') as f:
        f.truncate(os.path.getsize(data) // 2)
    proc = _read_all(store)
    # A signal shows as a negative return code (SIGBUS: -7).
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert 'is truncated' in proc.stderr and store in proc.stderr


def test_bit_rot_is_named_with_the_store_and_the_video(tmp_path):
    """One flipped bit in one entry's values: its read names the store and
    the video; every other entry still reads."""
    store = write_bank(tmp_path / 'bank.lmdb', TRACKS)
    _close_reader(store)
    key = 'v007.mp4'
    total, feats = TRACKS[key]
    value = pack_track(np.ascontiguousarray(feats, dtype='<f4'), total)
    data = osp.join(store, 'data.mdb')
    with open(data, 'rb') as f:
        raw = f.read()
    at = raw.find(value)
    assert at > 0 and raw.find(value, at + 1) == -1
    flip = at + _HEADER.size + 37
    with open(data, 'r+b') as f:
        f.seek(flip)
        f.write(bytes([raw[flip] ^ 0x04]))
    bank = FeatureBank(store)
    with pytest.raises(ValueError, match=rf'(?s){store}\[{key}\].*checksum'):
        bank.get(key)
    for other in TRACKS:
        if other != key:
            np.testing.assert_array_equal(bank.get(other)[1],
                                          TRACKS[other][1])
    bank.close()


def _put_raw(store, key, feats):
    """Write a track around the writer's checks, as damage would."""
    feats = np.ascontiguousarray(feats, dtype='<f4')
    value = pack_track(feats, 400)
    _close_reader(store)
    env = lmdb.open(store, subdir=True)
    with env.begin(write=True) as txn:
        txn.put(key.encode(), value)
    env.close()


@pytest.mark.parametrize('bad', [np.inf, -np.inf, np.nan, 1e30])
def test_store_refuses_absurd_targets(tmp_path, bad):
    total, feats = ramp_track(400)
    feats = feats.copy()
    feats[3, 1] = bad
    with pytest.raises(ValueError, match='not finite or beyond'):
        write_bank(tmp_path / 'refused.lmdb', {'a.mp4': (total, feats)})
    store = write_bank(tmp_path / 'bank.lmdb', {'a.mp4': ramp_track(400)})
    _put_raw(store, 'a.mp4', feats)
    bank = FeatureBank(store)
    # Rows away from the damage still read.
    assert np.isfinite(bank.lookup('a.mp4', np.array([0]))[0]).all()
    with pytest.raises(ValueError, match=r'bank\.lmdb, a\.mp4: 1 values'):
        bank.lookup('a.mp4', np.array([12]))
    bank.close()


def test_largest_accepted_value_fits_both_dtypes(tmp_path):
    total, feats = ramp_track(400)
    feats = feats.copy()
    feats[0, 0] = MAX_ABS
    store = write_bank(tmp_path / 'edge.lmdb', {'a.mp4': (total, feats)})
    bank = FeatureBank(store)
    assert bank.lookup('a.mp4', np.array([0]))[0][0, 0] == MAX_ABS
    assert feats.shape[1] == DIM
    bank.close()
