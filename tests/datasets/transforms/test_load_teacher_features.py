"""LoadTeacherFeatures on hand-written banks and real videos."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
from tests.conftest import make_video_dataset
from tests.feature_bank.bank_utils import DIM, PREFIX, ramp_track, write_bank

init_default_scope('mmaction')

def results(key='a.mp4', starts=(0, ), **extra):
    return dict(
        filename=osp.join(PREFIX, key),
        clip_starts=np.asarray(starts),
        **extra)


@pytest.fixture
def bank(tmp_path):
    # 30 frames, 8-frame clips: windows start at 0, 4, ..., 20.
    return write_bank(tmp_path / 'bank.lmdb', {'a.mp4': ramp_track(30)})


def test_picks_the_nearest_window_ties_to_the_earlier(bank):
    transform = TRANSFORMS.build(
        dict(type='LoadTeacherFeatures', store=bank, clip_len=8))
    starts = np.arange(0, 23)  # every valid clip start
    out = transform(results(starts=starts))
    feats = out['teacher_feats']
    assert feats.shape == (23, DIM) and feats.dtype == np.float32
    picked = out['teacher_clip_starts']
    assert np.array_equal(feats[:, 0] * 4, picked)
    # 2 lies between windows 0 and 4, 6 between 4 and 8: the earlier.
    assert picked[[0, 1, 2, 3, 5, 6, 7]].tolist() == [0, 0, 0, 4, 4, 4, 8]
    # Past the last window (20) the last one.
    assert picked[[20, 21, 22]].tolist() == [20, 20, 20]
    windows = np.arange(0, 21, 4)
    distance = np.abs(starts[:, None] - windows[None])
    # argmin returns the first minimum: the earlier window on ties.
    assert np.array_equal(picked, windows[distance.argmin(1)])
    assert distance.min(1).max() == 2


def test_start_index_offsets_the_clip(bank):
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    out = transform(results(starts=[0, 3], start_index=8))
    assert out['teacher_clip_starts'].tolist() == [8, 12]


def test_missing_video_names_video_and_store(bank):
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    with pytest.raises(KeyError, match=r"'b\.mp4'.*" + bank):
        transform(results('b.mp4'))


def test_missing_store_fails_at_first_use(tmp_path):
    store = str(tmp_path / 'nowhere.lmdb')
    # Building a config's pipeline must not need the bank yet.
    transform = TRANSFORMS.build(
        dict(type='LoadTeacherFeatures', store=store))
    with pytest.raises(FileNotFoundError, match='nowhere.lmdb'):
        transform(results())


def test_refuses_other_clip_settings(bank):
    transform = TRANSFORMS.build(
        dict(type='LoadTeacherFeatures', store=bank, clip_len=16))
    with pytest.raises(ValueError, match='clip_len=8.*clip_len=16'):
        transform(results())
    transform = TRANSFORMS.build(
        dict(type='LoadTeacherFeatures', store=bank, frame_interval=2))
    with pytest.raises(ValueError, match='frame_interval=1.*frame_interval=2'):
        transform(results())
    # HalluSampleFrames reports its interval in the results.
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    with pytest.raises(ValueError, match='frame_interval=2'):
        transform(results(frame_interval=2))
    assert transform(results(frame_interval=1))['teacher_feats'].shape == (
        1, DIM)


def test_needs_clip_starts(bank):
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    with pytest.raises(KeyError, match='HalluSampleFrames'):
        transform(dict(filename=osp.join(PREFIX, 'a.mp4')))


def test_clip_outside_the_stored_video(bank):
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    # The last full clip of 30 frames starts at 22.
    transform(results(starts=[22]))
    with pytest.raises(ValueError, match='has the video changed'):
        transform(results(starts=[23]))


def test_data_prefix(tmp_path):
    store = write_bank(
        tmp_path / 'bank.lmdb', {
            'cls/a.mp4': ramp_track(30),
            'b.mp4': ramp_track(30, offset=100.)
        },
        prefixes=['/old', '/old/videos'])
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=store))
    # The longest recorded prefix that holds the file.
    out = transform(dict(filename='/old/videos/b.mp4', clip_starts=[0]))
    assert out['teacher_feats'][0, 0] == 100.
    with pytest.raises(KeyError, match='none of the data prefixes'):
        transform(dict(filename='/new/videos/b.mp4', clip_starts=[0]))
    # Videos moved: the dataset's prefix given explicitly.
    moved = TRANSFORMS.build(
        dict(type='LoadTeacherFeatures', store=store, data_prefix='/new'))
    out = moved(dict(filename='/new/cls/a.mp4', clip_starts=[4]))
    assert out['teacher_feats'][0, 0] == 1.
    assert 'data_prefix=' in repr(moved)


def test_pickles_after_use(bank):
    transform = TRANSFORMS.build(dict(type='LoadTeacherFeatures', store=bank))
    expected = transform(results(starts=[9]))['teacher_feats']
    copy = pickle.loads(pickle.dumps(transform))
    assert np.array_equal(copy(results(starts=[9]))['teacher_feats'],
                          expected)


def test_training_pipeline_in_loader_workers(tmp_path):
    """Real videos, the bank pipeline, two forked loader workers (the bank
    was first opened in the parent) and HalluciNetDataPreprocessor."""
    data = make_video_dataset(str(tmp_path / 'data'), num_videos=4)
    keys = [f'video_{i:03d}.mp4' for i in range(4)]
    # 24 frames, clip 8, stride 4: windows 0, 4, ..., 16.
    store = write_bank(
        tmp_path / 'bank.lmdb',
        {k: ramp_track(24, offset=100. * i)
         for i, k in enumerate(keys)},
        prefixes=[data['video_dir']])
    pipeline = [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=8,
            num_segments=3,
            with_teacher=False),
        dict(type='LoadTeacherFeatures', store=store, clip_len=8),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews', teacher_scale=None),
        dict(type='FormatShape', input_format='NCHW'),
        dict(
            type='PackActionInputs',
            collect_keys=('imgs', 'teacher_feats'),
            meta_keys=('filename', 'clip_starts', 'teacher_clip_starts'))
    ]
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            ann_file=data['ann_file'],
            data_prefix=dict(video=data['video_dir']),
            pipeline=pipeline))
    dataset[0]  # opens the bank in this process, before the fork
    loader = DataLoader(
        dataset,
        batch_size=2,
        num_workers=2,
        collate_fn=pseudo_collate,
        multiprocessing_context='fork')
    preprocessor = MODELS.build(
        dict(type='HalluciNetDataPreprocessor', mean=[0] * 3, std=[1] * 3))
    seen = []
    for batch in loader:
        out = preprocessor(batch, True)
        feats = out['inputs']['teacher_feats']
        assert feats.shape == (2, 3, DIM) and feats.dtype == torch.float32
        assert out['inputs']['imgs'].shape == (2, 3, 3, 32, 32)
        for sample, rows in zip(out['data_samples'], feats):
            video = keys.index(osp.basename(sample.filename))
            window = sample.teacher_clip_starts // 4
            assert np.allclose(rows[:, 0].numpy(), 100. * video + window)
            assert np.abs(sample.teacher_clip_starts -
                          sample.clip_starts).max() <= 2
            seen.append(video)
    assert sorted(seen) == [0, 1, 2, 3]
