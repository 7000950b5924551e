"""``feature_bank/store.py``: a damaged feature store gives an error
naming it (and the video), never a signal, and never trains on
non-finite, absurd or another video's targets. Which check catches what:
the read path checks an entry's header (its CRC, the key, the store's
identity tag) and the CRC of each row it reads; ``FeatureBank.verify``
(tools/verify_teacher_bank.py) every row; ``meta.json`` is checked
against its own sha256 when a store is opened (the writer's refusals:
test_writer.py)."""
import json
import os
import os.path as osp
import subprocess
import sys

import lmdb
import numpy as np
import pytest

from hallucinet_plugin.feature_bank import FeatureBank
from hallucinet_plugin.feature_bank.bank_format import (
    META_FILE,
    encode_entry,
    read_meta,
    shard_name,
    shard_of,
)
from hallucinet_plugin.feature_bank.store import close_readers
from tests.conftest import REPO
from tests.feature_bank.bank_utils import DIM, ramp_track, write_bank

# Enough videos that each shard spans several pages, so that cutting its
# file leaves pages that the index still points to.
TRACKS = {f'v{i:03d}.mp4': ramp_track(400, offset=i) for i in range(80)}

READ_ALL = '''
import sys
from hallucinet_plugin.feature_bank import FeatureBank
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


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
    return write_bank(tmp_path_factory.mktemp('clean') / 'bank.lmdb', TRACKS)


@pytest.fixture
def store(clean, tmp_path):
    """A copy of the clean store to damage."""
    import shutil
    copy = str(tmp_path / 'bank.lmdb')
    shutil.copytree(clean, copy)
    return copy


def shard_file(store, key):
    meta = read_meta(store)
    return osp.join(store, shard_name(shard_of(key.encode(),
                                               meta['shards'])), 'data.mdb')


def flip_byte(store, key, offset):
    """Flip one bit of ``key``'s entry, ``offset`` bytes into it."""
    close_readers(store)
    bank = FeatureBank(store)
    value = _raw_value(store, key)
    data = shard_file(store, key)
    with open(data, 'rb') as f:
        raw = f.read()
    at = raw.find(value)
    assert at > 0 and raw.find(value, at + 1) == -1
    with open(data, 'r+b') as f:
        f.seek(at + offset)
        f.write(bytes([raw[at + offset] ^ 0x04]))
    return bank


def _raw_value(store, key):
    env = lmdb.open(osp.dirname(shard_file(store, key)), readonly=True,
                    lock=False)
    try:
        with env.begin() as txn:
            return txn.get(key.encode())
    finally:
        env.close()


def put_raw(store, key, value):
    """Write a value around the writer, as damage or tampering would."""
    close_readers(store)
    env = lmdb.open(osp.dirname(shard_file(store, key)), subdir=True)
    with env.begin(write=True) as txn:
        txn.put(key.encode(), value)
    env.close()


def test_truncated_shard_is_named_not_a_signal(store):
    whole = _read_all(store)
    assert whole.returncode == 0, whole.stderr
    assert f'read {len(TRACKS)}' in whole.stdout
    data = shard_file(store, 'v000.mp4')
    with open(data, 'r+b') as f:
        f.truncate(os.path.getsize(data) // 2)
    proc = _read_all(store)
    # A signal shows as a negative return code (SIGBUS: -7).
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert 'is truncated' in proc.stderr and store in proc.stderr


def test_bit_rot_in_a_row_names_the_store_the_video_and_the_row(store):
    """A flipped bit in one row: reading that row names store, video and
    row; the entry's other rows and every other entry still read; verify
    finds it."""
    key = 'v007.mp4'
    total, feats = TRACKS[key]
    header = 28 + 4 * len(feats) + 4
    bank = flip_byte(store, key, header + 3 * DIM * 4 + 1)  # row 3
    with pytest.raises(ValueError,
                       match=rf'(?s){store}\[{key}\]: row 3 checksum'):
        bank.lookup(key, np.array([12]))
    np.testing.assert_array_equal(
        bank.lookup(key, np.array([0]))[0], feats[:1])
    for other in list(TRACKS)[:10]:
        if other != key:
            np.testing.assert_array_equal(bank.get(other)[1],
                                          TRACKS[other][1])
    with pytest.raises(ValueError, match=rf'{key}\]: row 3 checksum'):
        bank.verify()
    bank.close()


@pytest.mark.parametrize('offset, words', [
    (8, 'header checksum'),  # the frame count (the 24 -> 8216 flip)
    (28 + 4, 'header checksum'),  # a row's CRC
])
def test_header_damage_is_caught_on_every_read(store, offset, words):
    bank = flip_byte(store, 'v011.mp4', offset)
    with pytest.raises(ValueError, match=rf'v011\.mp4\]: {words}'):
        bank.lookup('v011.mp4', np.array([0]))
    bank.close()


def test_an_entry_copied_under_another_key_is_refused(store):
    put_raw(store, 'v002.mp4', _raw_value(store, 'v005.mp4'))
    bank = FeatureBank(store)
    with pytest.raises(ValueError,
                       match=r'v002\.mp4\]: the entry was written for '
                       'another video'):
        bank.lookup('v002.mp4', np.array([0]))
    bank.close()


def test_an_entry_of_another_teacher_is_refused(store):
    meta = read_meta(store)
    total, feats = TRACKS['v001.mp4']
    forged, _ = encode_entry(b'v001.mp4', feats, total, 'float32',
                             meta['tag'] ^ 1)
    put_raw(store, 'v001.mp4', forged)
    bank = FeatureBank(store)
    with pytest.raises(ValueError, match='another teacher or settings'):
        bank.get('v001.mp4')
    bank.close()


def test_metadata_edits_and_damage_name_the_store(store):
    path = osp.join(store, META_FILE)
    with open(path) as f:
        meta = json.load(f)
    meta['teacher_ckpt_sha256'] = 'f' * 64
    with open(path, 'w') as f:
        json.dump(meta, f)
    with pytest.raises(ValueError,
                       match=rf'{store}: .*does not match its own checksum'):
        FeatureBank(store).meta
    with open(path, 'r+b') as f:
        f.seek(5)
        f.write(b'\xff\x00')
    with pytest.raises(ValueError, match=rf'{store}: .*is damaged'):
        FeatureBank(store).meta


def test_values_beyond_what_the_teacher_gave_are_refused(store):
    """Finite values far beyond the largest magnitude recorded at
    extraction, in an entry forged with valid checksums: reading the whole
    entry and verify refuse it. (A read of single rows relies on the row
    checksums: a row that passes holds what extraction wrote.)"""
    meta = read_meta(store)
    total, feats = TRACKS['v003.mp4']
    feats = feats.copy()
    feats[3, 1] = 60000.  # within float16, 60x the store's bound
    put_raw(store, 'v003.mp4',
            encode_entry(b'v003.mp4', feats, total, 'float32',
                         meta['tag'])[0])
    bank = FeatureBank(store)
    message = (r'bank\.lmdb, v003\.mp4: 1 values .*beyond '
               rf'\+-{meta["max_abs"]:g}')
    with pytest.raises(ValueError, match=message):
        bank.get('v003.mp4')
    with pytest.raises(ValueError, match=message):
        bank.verify()
    bank.close()
