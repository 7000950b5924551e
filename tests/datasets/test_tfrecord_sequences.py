"""``datasets/tfrecord_sequences.py``: a damaged or missing record file is
named, with what is wrong and where."""
import os.path as osp

import pytest
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from tests.datasets.feature_sequences import build_dataset, write_records

init_default_scope('mmaction')

DIMS = dict(appearance=12, motion=6)


def test_damaged_tfrecords_are_named(tmp_path):
    path = tmp_path / 'a.tfrecord'
    write_records(str(path), [[0], [1]], [4, 6])
    data = bytearray(path.read_bytes())
    streams = dict(appearance=dict(type='tfrecord', files=str(path)))
    # A flipped byte inside the first record's data.
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r'a\.tfrecord: bad data checksum'
                       r'.*byte 0'):
        build_dataset(ann_file=None, streams=streams)
    data[40] ^= 0xFF
    path.write_bytes(bytes(data[:-7]))
    with pytest.raises(ValueError, match=r'a\.tfrecord: truncated'):
        build_dataset(ann_file=None, streams=streams)
    path.write_bytes(b'not a tfrecord file at all')
    with pytest.raises(ValueError, match='bad length checksum'):
        build_dataset(ann_file=None, streams=streams)
    with pytest.raises(FileNotFoundError, match='matches no file'):
        build_dataset(ann_file=None, streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / 'none*.tfrecord'))))
    assert not osp.exists(tmp_path / 'none.tfrecord')
