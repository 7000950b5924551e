"""FeatureSequenceDataset on real files: .npy streams, feature banks
(LMDB) and YouTube-8M-style TFRecords (the transforms' and the record
reader's own tests: their mirrored files)."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.datasets.tfrecord_sequences import (
    frame_features,
    parse_sequence_example,
    read_record,
    record_offsets,
)
from hallucinet_plugin.utils import get_gt_label
from tests.datasets.feature_sequences import (
    build_dataset,
    sequence_pipeline,
    write_npy_streams,
    write_records,
)

DIMS = dict(appearance=12, motion=6)


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmaction')


def test_npy_streams_read_and_sampled_alike(tmp_path):
    data = write_npy_streams(str(tmp_path), [0, 1, 2], DIMS, [10, 3, 7])
    dataset = build_dataset(**data, pipeline=sequence_pipeline(test_mode=True))
    assert len(dataset) == 3
    sample = dataset[0]
    app = np.load(tmp_path / 'appearance' / 'v0.npy')
    motion = np.load(tmp_path / 'motion' / 'v0.npy')
    # 10 steps in 4 segments of 2.5, their middles: 1.25, 3.75, 6.25, 8.75.
    inds = [1, 3, 6, 8]
    assert torch.equal(sample['inputs']['appearance'],
                       torch.from_numpy(app[inds]))
    assert torch.equal(sample['inputs']['motion'],
                       torch.from_numpy(motion[inds]))
    assert get_gt_label(sample['data_samples']).item() == 0
    # Shorter than num_steps: steps repeat, in order (segments of 0.75,
    # middles 0.375, 1.125, 1.875, 2.625).
    short = dataset[1]['inputs']['appearance']
    rows = np.load(tmp_path / 'appearance' / 'v1.npy')
    assert torch.equal(short, torch.from_numpy(rows[[0, 1, 1, 2]]))


def test_multi_class_labels_are_multi_hot(tmp_path):
    data = write_npy_streams(str(tmp_path), [[0, 3], [2]], DIMS)
    dataset = build_dataset(**data, multi_class=True, num_classes=5)
    label = get_gt_label(dataset[0]['data_samples'])
    assert label.tolist() == [1, 0, 0, 1, 0]


@pytest.mark.parametrize('line, match', [
    ('v0 x', 'line 1: labels must be integers'),
    ('v0 1 2', r'line 1: 2 labels .*multi_class=True'),
    ('v0', 'line 1: 0 labels'),
])
def test_bad_annotation_lines_are_named(tmp_path, line, match):
    data = write_npy_streams(str(tmp_path), [0], DIMS)
    with open(data['ann_file'], 'w') as f:
        f.write(line + '\n')
    with pytest.raises(ValueError, match=match):
        build_dataset(**data)


@pytest.mark.parametrize('labels, kwargs, match', [
    ([0, 99], dict(num_classes=8), r'line 2: label 99 .*outside \[0, 8\)'),
    ([0, -1], dict(), r'line 2: label -1 .*allow_unlabelled=True'),
    ([-2], dict(allow_unlabelled=True), 'line 1: label -2 .*negative'),
])
def test_labels_are_range_checked(tmp_path, labels, kwargs, match):
    data = write_npy_streams(str(tmp_path), labels, DIMS)
    with pytest.raises(ValueError, match=match):
        build_dataset(**data, **kwargs)


def test_unlabelled_videos_are_marked(tmp_path):
    """-1 with allow_unlabelled: the sample says labelled=False, which the
    recognizer's classification losses skip."""
    data = write_npy_streams(str(tmp_path), [2, -1], DIMS)
    dataset = build_dataset(**data, allow_unlabelled=True, num_classes=4)
    assert dataset[0]['data_samples'].metainfo.get('labelled', True)
    assert dataset[1]['data_samples'].metainfo['labelled'] is False


def test_missing_and_damaged_files_are_named(tmp_path):
    data = write_npy_streams(str(tmp_path), [0, 1], DIMS)
    missing = tmp_path / 'motion' / 'v1.npy'
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=r'line 2.*v1\.npy'):
        build_dataset(**data)
    np.save(missing, np.zeros((5, 6), np.float32))
    dataset = build_dataset(**data)
    # Streams of different lengths are not the same moments.
    with pytest.raises(ValueError, match=r"'v1'.*different numbers of steps"):
        dataset[1]
    np.save(missing, np.full((11, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match=r'v1\.npy.*NaN'):
        build_dataset(**data)[1]
    # A pickled object array is refused, never unpickled.
    np.save(missing, np.array([{'a': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r'v1\.npy: cannot read'):
        build_dataset(**data)[1]


def test_bad_stream_configs(tmp_path):
    data = write_npy_streams(str(tmp_path), [0], DIMS)
    with pytest.raises(ValueError, match=r'streams.motion.type'):
        build_dataset(ann_file=data['ann_file'],
              streams=dict(motion=dict(type='hdf5', prefix='x')))
    with pytest.raises(ValueError, match=r"streams.motion .*needs 'store'"):
        build_dataset(ann_file=data['ann_file'], streams=dict(motion=dict(
            type='bank')))
    with pytest.raises(ValueError, match='multi_class=True needs'):
        build_dataset(**data, multi_class=True)
    with pytest.raises(KeyError, match=r"streams \['flow'\]"):
        build_dataset(
            **data, pipeline=sequence_pipeline(streams=('flow', )))[0]


def test_tfrecords_give_videos_labels_and_dequantised_frames(tmp_path):
    path = str(tmp_path / 'train0.tfrecord')
    videos = write_records(path, [[3], [1, 4], [0]], [5, 9, 2])
    dataset = build_dataset(
        ann_file=None,
        streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / 'train*.tfrecord'))),
        multi_class=True,
        num_classes=5,
        pipeline=sequence_pipeline(streams=('appearance', ), num_steps=9,
                          test_mode=True))
    assert [dataset.get_data_info(i)['video_id']
            for i in range(len(dataset))] == ['yt0', 'yt1', 'yt2']
    sample = dataset[1]
    assert get_gt_label(sample['data_samples']).tolist() == [0, 1, 0, 0, 1]
    # The starter code's Dequantize: q * 4/255 + (4/512 - 2).
    expected = videos['yt1']['rgb'] * (4 / 255) + (4 / 512 - 2)
    assert np.allclose(sample['inputs']['appearance'].numpy(), expected,
                       atol=1e-5)
    # Offsets are real: each record reads back on its own.
    offsets = [o for o, _ in record_offsets(path)]
    example = parse_sequence_example(read_record(path, offsets[2]), 'x')
    audio = frame_features(example, 'audio', 'x')
    assert audio.shape == (2, 4)


def test_tfrecord_stream_with_annotation_file_and_npy_motion(tmp_path):
    write_records(str(tmp_path / 'a.tfrecord'), [[0], [1]], [4, 6])
    (tmp_path / 'motion').mkdir()
    for vid, steps in (('yt0', 4), ('yt1', 6)):
        np.save(tmp_path / 'motion' / f'{vid}.npy',
                np.ones((steps, 3), np.float32))
    ann = tmp_path / 'list.txt'
    ann.write_text('yt1 1\n')
    dataset = build_dataset(
        ann_file=str(ann),
        streams=dict(
            appearance=dict(type='tfrecord',
                            files=str(tmp_path / '*.tfrecord')),
            motion=dict(type='npy', prefix=str(tmp_path / 'motion'))))
    assert len(dataset) == 1
    assert dataset[0]['inputs']['motion'].shape == (4, 3)
    ann.write_text('yt7 1\n')
    with pytest.raises(KeyError, match=r"'yt7' is in none of the"):
        build_dataset(ann_file=str(ann), streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / '*.tfrecord'))))
