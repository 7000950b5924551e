"""YouTube-8M's frame-level TFRecord layout, read without TensorFlow.

A TFRecord file is a sequence of records, each framed as ``length``
(uint64, little endian), the masked CRC-32C of those 8 bytes, ``length``
bytes of data and their masked CRC-32C. Both checksums are verified, so a
truncated or damaged shard gives an error naming the file and offset. The
data of YouTube-8M's frame-level records is a ``tf.train.SequenceExample``
(parsed with the ``tfrecord`` package's protobuf classes): context features
``id`` (bytes) and ``labels`` (int64 list), feature lists such as ``rgb``
(1024 uint8 per frame) and ``audio`` (128 uint8 per frame), quantised to
8 bits over ``[-2, 2]`` (Abu-El-Haija et al. 2016, the starter code's
``Dequantize``).
"""
import os
import struct
from typing import Dict, Iterator, List, Tuple

import numpy as np

_MASK_DELTA = 0xA282EAD8


def _needs(module: str):
    """A TFRecord-only dependency, imported when a TFRecord is read."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f'reading TFRecords needs {module.split(".")[0]!r}: pip install '
            "tfrecord crc32c (or hallucinet_plugin[youtube8m])") from err


def _masked_crc(data: bytes) -> int:
    crc = _needs('crc32c').crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _read_exact(handle, size: int, path: str, offset: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise ValueError(f'{path}: truncated TFRecord at byte {offset} '
                         f'(wanted {size} bytes, found {len(data)})')
    return data


def _read_record(handle, path: str, offset: int) -> Tuple[bytes, int]:
    """The record at ``offset`` and the offset of the next one."""
    header = _read_exact(handle, 12, path, offset)
    length, length_crc = struct.unpack('<QI', header)
    if _masked_crc(header[:8]) != length_crc:
        raise ValueError(f'{path}: bad length checksum of the TFRecord at '
                         f'byte {offset}; the file is damaged or not a '
                         'TFRecord file')
    left = os.fstat(handle.fileno()).st_size - offset - 16
    if length > left:
        # Checked before reading: a forged length (with its checksum) would
        # otherwise ask for any amount of memory.
        raise ValueError(f'{path}: truncated or damaged TFRecord at byte '
                         f'{offset}: it claims {length} bytes, the file '
                         f'holds {max(left, 0)} more')
    data = _read_exact(handle, length, path, offset + 12)
    (data_crc, ) = struct.unpack('<I',
                                 _read_exact(handle, 4, path,
                                             offset + 12 + length))
    if _masked_crc(data) != data_crc:
        raise ValueError(f'{path}: bad data checksum of the TFRecord at '
                         f'byte {offset}; the file is damaged')
    return data, offset + 16 + length


def record_offsets(path: str) -> Iterator[Tuple[int, bytes]]:
    """Every record of a TFRecord file with its byte offset."""
    offset = 0
    size = os.path.getsize(path)
    with open(path, 'rb') as handle:
        while offset < size:
            data, next_offset = _read_record(handle, path, offset)
            yield offset, data
            offset = next_offset


def read_record(path: str, offset: int) -> bytes:
    """The data of the record that starts at byte ``offset``."""
    with open(path, 'rb') as handle:
        handle.seek(offset)
        return _read_record(handle, path, offset)[0]


def parse_sequence_example(data: bytes, where: str):
    """A ``tf.train.SequenceExample`` from a record's bytes."""
    example = _needs('tfrecord.example_pb2').SequenceExample()
    try:
        example.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError, by any other name
        raise ValueError(f'{where}: not a tf.train.SequenceExample '
                         f'({err})') from err
    return example


def context_of(example, where: str) -> Tuple[str, List[int]]:
    """The ``id`` and ``labels`` of a YouTube-8M record."""
    feature = example.context.feature
    if 'id' not in feature:
        raise ValueError(f'{where}: the record has no context feature '
                         "'id'")
    ids = feature['id'].bytes_list.value
    if len(ids) != 1:
        raise ValueError(f'{where}: context feature id holds {len(ids)} '
                         'values, expected 1')
    labels = list(feature['labels'].int64_list.value) \
        if 'labels' in feature else []
    return ids[0].decode('utf-8', errors='replace'), labels


def frame_features(example,
                   name: str,
                   where: str,
                   dequantize: Tuple[float, float] = (-2.0, 2.0)
                   ) -> np.ndarray:
    """One feature list of a record as ``(T, D)`` float32.

    Args:
        example: The parsed ``SequenceExample``.
        name (str): The feature list, e.g. ``'rgb'`` or ``'audio'``.
        where (str): File and offset, for errors.
        dequantize (tuple[float, float]): The quantisation range of the
            uint8 bytes lists (YouTube-8M: ``(-2, 2)``); a float list is
            read as it is.
    """
    lists = example.feature_lists.feature_list
    if name not in lists:
        raise KeyError(f'{where}: the record has no feature list {name!r} '
                       f'(it has {sorted(lists)})')
    steps = lists[name].feature
    if not steps:
        raise ValueError(f'{where}: feature list {name!r} is empty')
    if steps[0].HasField('bytes_list'):
        counts = [len(step.bytes_list.value) for step in steps]
        if set(counts) != {1}:
            bad = next(i for i, c in enumerate(counts) if c != 1)
            raise ValueError(f'{where}: step {bad} of {name!r} holds '
                             f'{counts[bad]} byte strings, expected 1')
        rows = [
            np.frombuffer(step.bytes_list.value[0], dtype=np.uint8)
            for step in steps
        ]
        low, high = dequantize
        scale = (high - low) / 255.0
        # The starter code's bias: half a quantisation step above ``low``.
        bias = (high - low) / 512.0 + low
        sizes = {len(r) for r in rows}
        if len(sizes) != 1:
            raise ValueError(f'{where}: frames of {name!r} differ in size '
                             f'({sorted(sizes)})')
        return np.stack(rows).astype(np.float32) * scale + bias
    rows = [np.asarray(step.float_list.value, np.float32) for step in steps]
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f'{where}: frames of {name!r} differ in size')
    return np.stack(rows)


def write_sequence_records(path: str, videos: List[Dict]) -> None:
    """Write YouTube-8M-style frame-level records (tests, demos).

    Args:
        path (str): The TFRecord file.
        videos (list[dict]): ``id`` (str), ``labels`` (list[int]) and
            feature lists name -> ``(T, D)`` uint8 array.
    """
    example_pb2 = _needs('tfrecord.example_pb2')
    with open(path, 'wb') as handle:
        for video in videos:
            example = example_pb2.SequenceExample()
            context = example.context.feature
            context['id'].bytes_list.value.append(video['id'].encode())
            context['labels'].int64_list.value.extend(video['labels'])
            for name, frames in video.items():
                if name in ('id', 'labels'):
                    continue
                feature_list = example.feature_lists.feature_list[name]
                for row in np.asarray(frames, np.uint8):
                    feature_list.feature.add().bytes_list.value.append(
                        row.tobytes())
            data = example.SerializeToString()
            header = struct.pack('<Q', len(data))
            handle.write(header + struct.pack('<I', _masked_crc(header)))
            handle.write(data + struct.pack('<I', _masked_crc(data)))
