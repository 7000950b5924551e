"""Feature files that ask for more than they hold, refused naming the file
(and the record) before any allocation: an ``.npy`` header claiming 29 TiB,
a TFRecord length field of 2**40 with a valid checksum, a frame whose byte
list is empty."""
import struct

import numpy as np
import pytest

from hallucinet_plugin.datasets.tfrecord_sequences import (
    _masked_crc,
    frame_features,
    parse_sequence_example,
    read_record,
    record_offsets,
)
from hallucinet_plugin.datasets.transforms.load_feature_sequence import (
    LoadFeatureSequence,
)
from tests.datasets.feature_sequences import write_records


def test_npy_header_claiming_terabytes_is_refused(tmp_path):
    path = tmp_path / 'v0.npy'
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(
            f, dict(descr='<f4', fortran_order=False,
                    shape=(2**21, 2**21)))  # 16 TiB of float32
        f.write(b'\0' * 64)
    with pytest.raises(ValueError, match=r'v0\.npy: cannot read'):
        LoadFeatureSequence._read('motion', dict(type='npy',
                                                 path=str(path)))


def test_tfrecord_length_beyond_the_file_is_refused(tmp_path):
    path = tmp_path / 'forged.tfrecord'
    header = struct.pack('<Q', 2**40)
    path.write_bytes(header + struct.pack('<I', _masked_crc(header)) +
                     b'\0' * 32)
    with pytest.raises(ValueError,
                       match=r'forged\.tfrecord: truncated or damaged '
                       r'TFRecord at byte 0: it claims 1099511627776'):
        list(record_offsets(str(path)))


def test_frame_with_an_empty_byte_list_is_refused(tmp_path):
    path = str(tmp_path / 'shard.tfrecord')
    write_records(path, [[1]], [3])
    offset, _ = next(record_offsets(path))
    example = parse_sequence_example(read_record(path, offset), 'x')
    example.feature_lists.feature_list['rgb'].feature[1].bytes_list.Clear()
    where = f'{path} (record at byte {offset})'
    with pytest.raises(ValueError,
                       match=r"shard\.tfrecord.*step 1 of 'rgb' holds 0"):
        frame_features(example, 'rgb', where)
