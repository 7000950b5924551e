import os.path as osp

import decord
import mmcv
import numpy as np
import pytest
import torch
from mmaction.registry import TRANSFORMS
from mmengine.dataset import Compose

import hallucinet_plugin.datasets.transforms.hallu_sample_frames  # noqa: F401
import hallucinet_plugin.datasets.transforms.hallu_split_views  # noqa: F401

CLIP_LEN, NUM_SEGMENTS, OFFSETS = 16, 2, (0, 5)
CROP, STUDENT, TEACHER = 24, 20, 16
META_KEYS = ('img_shape', 'crop_bbox', 'flip', 'frame_inds', 'student_inds',
             'teacher_inds')


class RecordingReader:
    """The real decord reader, remembering which frames it was asked for."""

    def __init__(self, reader, calls):
        self._reader = reader
        self._calls = calls

    def __len__(self):
        return len(self._reader)

    def get_batch(self, inds):
        self._calls.append(np.asarray(inds).copy())
        return self._reader.get_batch(inds)


class RecordDecoderCalls:
    """Pipeline step that wraps the video reader in :class:`RecordingReader`.
    """

    def __init__(self):
        self.calls = []

    def __call__(self, results):
        results['video_reader'] = RecordingReader(results['video_reader'],
                                                  self.calls)
        return results


def _pipeline(student_scale=(STUDENT, STUDENT), with_teacher=True):
    recorder = RecordDecoderCalls()
    cfgs = [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=CLIP_LEN,
            num_segments=NUM_SEGMENTS,
            student_offsets=OFFSETS,
            with_teacher=with_teacher,
            test_mode=True),
        recorder,
        dict(type='DecordDecode'),
        dict(type='RandomCrop', size=CROP),
        dict(type='Flip', flip_ratio=1),
        dict(
            type='HalluSplitViews',
            student_scale=student_scale,
            teacher_scale=(TEACHER, TEACHER)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(
            type='PackActionInputs',
            collect_keys=('imgs', 'teacher_imgs') if with_teacher else
            ('imgs', ),
            meta_keys=META_KEYS),
    ]
    steps = [
        TRANSFORMS.build(cfg) if isinstance(cfg, dict) else cfg
        for cfg in cfgs
    ]
    return Compose(steps), recorder


def _video(video_dataset, i=0):
    return osp.join(video_dataset['video_dir'], f'video_{i:03d}.mp4')


def _all_frames(filename):
    reader = decord.VideoReader(filename)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _expected(frame, crop_bbox, size):
    """Crop, horizontal flip and resize of one full decoded frame."""
    x1, y1, x2, y2 = crop_bbox
    view = np.ascontiguousarray(frame[y1:y2, x1:x2][:, ::-1])
    return mmcv.imresize(view, (size, size), interpolation='bilinear')


def _mean_abs_diff(img, frames):
    """Mean absolute difference of ``img`` to each of ``frames``."""
    diff = np.abs(img.astype(np.float32) - frames.astype(np.float32))
    return diff.mean(axis=(-3, -2, -1))


@pytest.fixture(scope='module')
def packed(video_dataset):
    np.random.seed(3)
    pipeline, recorder = _pipeline()
    filename = _video(video_dataset)
    return pipeline(dict(filename=filename, start_index=0, modality='RGB',
                         label=1)), recorder, filename


def test_view_shapes(packed):
    results, _, _ = packed
    inputs = results['inputs']
    assert set(inputs) == {'imgs', 'teacher_imgs'}
    num_student = NUM_SEGMENTS * len(OFFSETS)
    # Student: (S * F, C, H, W); teacher: (S, C, T, h, w).
    assert inputs['imgs'].shape == (num_student, 3, STUDENT, STUDENT)
    assert inputs['teacher_imgs'].shape == (NUM_SEGMENTS, 3, CLIP_LEN,
                                            TEACHER, TEACHER)
    assert inputs['imgs'].dtype == torch.uint8
    assert inputs['teacher_imgs'].dtype == torch.uint8
    assert results['data_samples'].img_shape == (STUDENT, STUDENT)


def test_decoder_asked_for_each_frame_once(packed):
    results, recorder, _ = packed
    meta = results['data_samples'].metainfo
    assert len(recorder.calls) == 1
    asked = recorder.calls[0]
    np.testing.assert_array_equal(asked, meta['frame_inds'])
    assert len(np.unique(asked)) == len(asked)
    # The two teacher clips overlap, yet their shared frames come once.
    teacher = meta['teacher_inds']
    assert len(asked) < teacher.size
    np.testing.assert_array_equal(np.sort(asked), np.unique(teacher))


def test_views_are_the_same_pixels_with_the_same_geometry(packed):
    results, _, filename = packed
    meta = results['data_samples'].metainfo
    assert meta['flip']
    crop_bbox = meta['crop_bbox']
    assert crop_bbox[2] - crop_bbox[0] == CROP
    frames = _all_frames(filename)
    # [S, C, T, h, w] -> [S, T, h, w, C]
    teacher = results['inputs']['teacher_imgs'].numpy().transpose(
        0, 2, 3, 4, 1)
    for s in range(NUM_SEGMENTS):
        for t in range(CLIP_LEN):
            expected = _expected(frames[meta['teacher_inds'][s, t]],
                                 crop_bbox, TEACHER)
            np.testing.assert_array_equal(teacher[s, t], expected)
    # [S * F, C, H, W] -> [S * F, H, W, C]
    student = results['inputs']['imgs'].numpy().transpose(0, 2, 3, 1)
    for i, ind in enumerate(meta['student_inds']):
        np.testing.assert_array_equal(
            student[i], _expected(frames[ind], crop_bbox, STUDENT))


def test_student_frame_is_the_first_frame_of_its_teacher_clip(packed):
    results, _, _ = packed
    student = results['inputs']['imgs'].numpy().transpose(0, 2, 3, 1)
    teacher = results['inputs']['teacher_imgs'].numpy().transpose(
        0, 2, 3, 4, 1)
    student = student.reshape((NUM_SEGMENTS, len(OFFSETS)) +
                              student.shape[1:])
    for s in range(NUM_SEGMENTS):
        for f, offset in enumerate(OFFSETS):
            small = mmcv.imresize(student[s, f], (TEACHER, TEACHER))
            diffs = _mean_abs_diff(small, teacher[s])
            # Nearly equal to its own clip frame: the two resize paths
            # (crop -> 20 -> 16 and crop -> 16) differ only a little, while
            # the moving square sets every other frame well apart.
            assert diffs.argmin() == offset
            assert diffs[offset] < 8
            assert np.delete(diffs, offset).min() > 1.8 * diffs[offset]
            # Same geometry: the student un-flipped matches much worse.
            mirrored = mmcv.imresize(
                np.ascontiguousarray(student[s, f][:, ::-1]),
                (TEACHER, TEACHER))
            assert _mean_abs_diff(mirrored, teacher[s, offset]) > \
                2 * diffs[offset]


def test_shared_size_student_equals_its_teacher_frame(video_dataset):
    np.random.seed(0)
    pipeline, _ = _pipeline(student_scale=None)
    results = pipeline(dict(filename=_video(video_dataset, 1),
                            start_index=0, modality='RGB'))
    student = results['inputs']['imgs'].numpy().transpose(0, 2, 3, 1)
    teacher = results['inputs']['teacher_imgs'].numpy().transpose(
        0, 2, 3, 4, 1)
    assert student.shape[1:3] == (CROP, CROP)
    student = student.reshape((NUM_SEGMENTS, len(OFFSETS)) +
                              student.shape[1:])
    for s in range(NUM_SEGMENTS):
        for f, offset in enumerate(OFFSETS):
            np.testing.assert_array_equal(
                mmcv.imresize(student[s, f], (TEACHER, TEACHER)),
                teacher[s, offset])


def test_student_only_pipeline(video_dataset):
    np.random.seed(0)
    pipeline, recorder = _pipeline(with_teacher=False)
    results = pipeline(dict(filename=_video(video_dataset, 2),
                            start_index=0, modality='RGB'))
    meta = results['data_samples'].metainfo
    assert 'teacher_inds' not in meta
    assert set(results['inputs']) == {'imgs'}
    assert results['inputs']['imgs'].shape == (NUM_SEGMENTS * len(OFFSETS),
                                               3, STUDENT, STUDENT)
    np.testing.assert_array_equal(recorder.calls[0],
                                  np.unique(meta['student_inds']))


def test_frame_count_mismatch_raises_naming_the_file(video_dataset):
    filename = _video(video_dataset)
    steps = [
        TRANSFORMS.build(dict(type='DecordInit')),
        TRANSFORMS.build(
            dict(type='HalluSampleFrames', clip_len=8, test_mode=True)),
        TRANSFORMS.build(dict(type='DecordDecode')),
    ]
    results = Compose(steps)(dict(filename=filename, start_index=0))
    assert len(results['imgs']) == 8
    split = TRANSFORMS.build(dict(type='HalluSplitViews'))
    # A transform between decode and split dropped a frame.
    results['imgs'] = results['imgs'][:-1]
    with pytest.raises(ValueError, match=r'video_000\.mp4: 7 decoded'):
        split(results)


def test_split_before_decode_order_raises():
    # Student-only decode, then split asked for a teacher view as well.
    split = TRANSFORMS.build(dict(type='HalluSplitViews'))
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match='x.mp4: 2 decoded frames for 4'):
        split(
            dict(
                filename='x.mp4',
                imgs=imgs,
                frame_inds=np.arange(4),
                student_inds=np.array([0]),
                teacher_inds=np.arange(4)[None]))


def test_repr():
    split = TRANSFORMS.build(
        dict(type='HalluSplitViews', student_scale=[20, 20]))
    assert repr(split) == ('HalluSplitViews(student_scale=(20, 20), '
                           'teacher_scale=(112, 112), '
                           'interpolation=bilinear)')
