"""FeatureSequenceDataset and its transforms on real files: .npy streams,
feature banks (LMDB) and YouTube-8M-style TFRecords."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.datasets.tfrecord_sequences import (
    frame_features,
    parse_sequence_example,
    read_record,
    record_offsets,
)
from hallucinet_plugin.feature_bank import window_starts
from hallucinet_plugin.utils import get_gt_label
from tests.datasets.feature_sequences import write_npy_streams, write_records
from tests.feature_bank.bank_utils import write_bank

DIMS = dict(appearance=12, motion=6)


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmaction')


def pipeline(streams=('appearance', 'motion'), num_steps=4, test_mode=False):
    return [
        dict(type='LoadFeatureSequence', streams=streams),
        dict(
            type='SampleFeatureSequence',
            num_steps=num_steps,
            test_mode=test_mode),
        dict(type='PackActionInputs', collect_keys=streams)
    ]


def build(**kwargs):
    kwargs.setdefault('pipeline', pipeline())
    return DATASETS.build(dict(type='FeatureSequenceDataset', **kwargs))


def test_npy_streams_read_and_sampled_alike(tmp_path):
    data = write_npy_streams(str(tmp_path), [0, 1, 2], DIMS, [10, 3, 7])
    dataset = build(**data, pipeline=pipeline(test_mode=True))
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


def test_training_samples_one_step_per_segment(tmp_path):
    data = write_npy_streams(str(tmp_path), [0], DIMS, [40])
    transform = DATASETS.build(dict(
        type='FeatureSequenceDataset', **data, pipeline=[
            dict(type='LoadFeatureSequence'),
            dict(type='SampleFeatureSequence', num_steps=4)])).pipeline
    seen = set()
    np.random.seed(0)
    for _ in range(50):
        info = DATASETS.build(dict(
            type='FeatureSequenceDataset', **data,
            pipeline=[])).get_data_info(0)
        inds = transform(info)['step_inds']
        assert [i // 10 for i in inds] == [0, 1, 2, 3]
        seen.update(inds.tolist())
    # Random places within the segments, not always the same ones.
    assert len(seen) > 20


def test_multi_class_labels_are_multi_hot(tmp_path):
    data = write_npy_streams(str(tmp_path), [[0, 3], [2]], DIMS)
    dataset = build(**data, multi_class=True, num_classes=5)
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
        build(**data)


@pytest.mark.parametrize('labels, kwargs, match', [
    ([0, 99], dict(num_classes=8), r'line 2: label 99 .*outside \[0, 8\)'),
    ([0, -1], dict(), r'line 2: label -1 .*allow_unlabelled=True'),
    ([-2], dict(allow_unlabelled=True), 'line 1: label -2 .*negative'),
])
def test_labels_are_range_checked(tmp_path, labels, kwargs, match):
    data = write_npy_streams(str(tmp_path), labels, DIMS)
    with pytest.raises(ValueError, match=match):
        build(**data, **kwargs)


def test_unlabelled_videos_are_marked(tmp_path):
    """-1 with allow_unlabelled: the sample says labelled=False, which the
    recognizer's classification losses skip."""
    data = write_npy_streams(str(tmp_path), [2, -1], DIMS)
    dataset = build(**data, allow_unlabelled=True, num_classes=4)
    assert dataset[0]['data_samples'].metainfo.get('labelled', True)
    assert dataset[1]['data_samples'].metainfo['labelled'] is False


def test_missing_and_damaged_files_are_named(tmp_path):
    data = write_npy_streams(str(tmp_path), [0, 1], DIMS)
    missing = tmp_path / 'motion' / 'v1.npy'
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=r'line 2.*v1\.npy'):
        build(**data)
    np.save(missing, np.zeros((5, 6), np.float32))
    dataset = build(**data)
    # Streams of different lengths are not the same moments.
    with pytest.raises(ValueError, match=r"'v1'.*different numbers of steps"):
        dataset[1]
    np.save(missing, np.full((11, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match=r'v1\.npy.*NaN'):
        build(**data)[1]
    # A pickled object array is refused, never unpickled.
    np.save(missing, np.array([{'a': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r'v1\.npy: cannot read'):
        build(**data)[1]


def test_bad_stream_configs(tmp_path):
    data = write_npy_streams(str(tmp_path), [0], DIMS)
    with pytest.raises(ValueError, match=r'streams.motion.type'):
        build(ann_file=data['ann_file'],
              streams=dict(motion=dict(type='hdf5', prefix='x')))
    with pytest.raises(ValueError, match=r"streams.motion .*needs 'store'"):
        build(ann_file=data['ann_file'], streams=dict(motion=dict(
            type='bank')))
    with pytest.raises(ValueError, match='multi_class=True needs'):
        build(**data, multi_class=True)
    with pytest.raises(KeyError, match=r"streams \['flow'\]"):
        build(**data, pipeline=pipeline(streams=('flow', )))[0]


def test_banks_of_different_clips_are_aligned_by_window_start(tmp_path):
    # Motion: 8-frame clips every 4 frames; appearance: 1-frame clips
    # every frame, row i holding the number i.
    total = 30
    motion_starts = window_starts(total, 8, 1, 4)
    motion = write_bank(
        tmp_path / 'motion.lmdb', {
            'a.mp4': (total,
                      np.repeat(motion_starts[:, None], 6,
                                axis=1).astype(np.float32))
        },
        stride=4,
        clip_len=8)
    appearance = write_bank(
        tmp_path / 'appearance.lmdb', {
            'a.mp4': (total,
                      np.repeat(np.arange(total)[:, None], 12,
                                axis=1).astype(np.float32))
        },
        stride=1,
        clip_len=1)
    ann = tmp_path / 'list.txt'
    ann.write_text('a.mp4 1\n')
    dataset = build(
        ann_file=str(ann),
        streams=dict(
            appearance=dict(type='bank', store=appearance),
            motion=dict(type='bank', store=motion)),
        pipeline=pipeline(num_steps=len(motion_starts), test_mode=True))
    inputs = dataset[0]['inputs']
    # Step t is the motion window starting at frame 4t and the appearance
    # of that same frame.
    assert inputs['motion'][:, 0].tolist() == motion_starts.tolist()
    assert inputs['appearance'][:, 0].tolist() == motion_starts.tolist()
    ann.write_text('b.mp4 1\n')
    with pytest.raises(KeyError, match=r"line 1: video 'b.mp4' is not in"):
        build(ann_file=str(ann), streams=dict(
            appearance=dict(type='bank', store=appearance)))


def test_tfrecords_give_videos_labels_and_dequantised_frames(tmp_path):
    path = str(tmp_path / 'train0.tfrecord')
    videos = write_records(path, [[3], [1, 4], [0]], [5, 9, 2])
    dataset = build(
        ann_file=None,
        streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / 'train*.tfrecord'))),
        multi_class=True,
        num_classes=5,
        pipeline=pipeline(streams=('appearance', ), num_steps=9,
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
    dataset = build(
        ann_file=str(ann),
        streams=dict(
            appearance=dict(type='tfrecord',
                            files=str(tmp_path / '*.tfrecord')),
            motion=dict(type='npy', prefix=str(tmp_path / 'motion'))))
    assert len(dataset) == 1
    assert dataset[0]['inputs']['motion'].shape == (4, 3)
    ann.write_text('yt7 1\n')
    with pytest.raises(KeyError, match=r"'yt7' is in none of the"):
        build(ann_file=str(ann), streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / '*.tfrecord'))))


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
        build(ann_file=None, streams=streams)
    data[40] ^= 0xFF
    path.write_bytes(bytes(data[:-7]))
    with pytest.raises(ValueError, match=r'a\.tfrecord: truncated'):
        build(ann_file=None, streams=streams)
    path.write_bytes(b'not a tfrecord file at all')
    with pytest.raises(ValueError, match='bad length checksum'):
        build(ann_file=None, streams=streams)
    with pytest.raises(FileNotFoundError, match='matches no file'):
        build(ann_file=None, streams=dict(appearance=dict(
            type='tfrecord', files=str(tmp_path / 'none*.tfrecord'))))
    assert not osp.exists(tmp_path / 'none.tfrecord')
