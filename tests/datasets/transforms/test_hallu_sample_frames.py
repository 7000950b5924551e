import numpy as np
import pytest
from mmaction.registry import TRANSFORMS

import hallucinet_plugin.datasets.transforms.hallu_sample_frames  # noqa: F401


def _sample(total_frames, start_index=0, filename='clip.mp4', **kwargs):
    sampler = TRANSFORMS.build(dict(type='HalluSampleFrames', **kwargs))
    return sampler(
        dict(
            filename=filename,
            total_frames=total_frames,
            start_index=start_index))


def test_one_segment_test_mode_centres_the_clip():
    # 24 frames, clip of 16: starts 0..8 keep the clip inside, centre 4.
    results = _sample(24, clip_len=16, test_mode=True)
    np.testing.assert_array_equal(results['teacher_inds'],
                                  np.arange(4, 20)[None])
    np.testing.assert_array_equal(results['student_inds'], [4])
    np.testing.assert_array_equal(results['clip_starts'], [4])
    np.testing.assert_array_equal(results['frame_inds'], np.arange(4, 20))
    # mmaction2's sense of clip_len / num_clips, for FormatShape.
    assert results['clip_len'] == 1
    assert results['num_clips'] == 1
    assert results['frame_interval'] == 1


@pytest.mark.parametrize('total_frames', [16, 17, 25, 40, 101])
@pytest.mark.parametrize('frame_interval', [1, 2])
def test_one_segment_test_mode_is_centred_for_any_length(
        total_frames, frame_interval):
    results = _sample(
        total_frames,
        clip_len=8,
        frame_interval=frame_interval,
        test_mode=True)
    teacher = results['teacher_inds'][0]
    np.testing.assert_array_equal(np.diff(teacher), frame_interval)
    before, after = teacher[0], total_frames - 1 - teacher[-1]
    assert before >= 0 and after >= 0
    assert abs(before - after) <= 1


def test_student_frame_is_the_first_frame_of_the_teacher_clip():
    results = _sample(60, clip_len=16, num_segments=3, test_mode=True)
    np.testing.assert_array_equal(results['student_inds'],
                                  results['teacher_inds'][:, 0])
    np.testing.assert_array_equal(results['clip_starts'],
                                  results['teacher_inds'][:, 0])


@pytest.mark.parametrize('frame_interval', [1, 2])
def test_two_frame_offsets(frame_interval):
    k = 5
    results = _sample(
        80,
        clip_len=8,
        num_segments=3,
        frame_interval=frame_interval,
        student_offsets=(0, k),
        test_mode=True)
    teacher = results['teacher_inds']
    j = teacher[:, 0]
    # Offsets count clip frames: segment-major [j0, j0 + k, j1, j1 + k, ...].
    expected = np.stack([j, j + k * frame_interval], axis=1).reshape(-1)
    np.testing.assert_array_equal(results['student_inds'], expected)
    np.testing.assert_array_equal(results['student_inds'].reshape(3, 2),
                                  teacher[:, [0, k]])
    assert results['clip_len'] == 2
    assert results['num_clips'] == 3


def test_segments_documented_indices():
    # Starts 0..32 split into 4 bins of 8.25; test mode takes bin centres.
    results = _sample(40, clip_len=8, num_segments=4, test_mode=True)
    starts = np.array([3, 11, 20, 28])
    np.testing.assert_array_equal(results['teacher_inds'],
                                  starts[:, None] + np.arange(8))
    np.testing.assert_array_equal(results['student_inds'], starts)


def _bins(total_frames, clip_len, num_segments, frame_interval=1):
    """Integer clip starts each segment may take, from the documented bins.
    """
    last = total_frames - (clip_len - 1) * frame_interval - 1
    edges = np.linspace(0, last + 1, num_segments + 1)
    # A start j = floor(x) for x in [lo, hi).
    return np.floor(edges[:-1]), np.ceil(edges[1:]) - 1


@pytest.mark.parametrize('test_mode', [True, False])
@pytest.mark.parametrize('total_frames,num_segments,frame_interval',
                         [(40, 4, 1), (100, 8, 2), (24, 3, 1), (23, 8, 2)])
def test_segments_ordered_in_bins_and_inside_the_video(
        total_frames, num_segments, frame_interval, test_mode):
    clip_len = 8
    lo, hi = _bins(total_frames, clip_len, num_segments, frame_interval)
    np.random.seed(0)
    for _ in range(1 if test_mode else 50):
        results = _sample(
            total_frames,
            clip_len=clip_len,
            num_segments=num_segments,
            frame_interval=frame_interval,
            test_mode=test_mode)
        teacher = results['teacher_inds']
        assert teacher.shape == (num_segments, clip_len)
        starts = teacher[:, 0]
        assert np.all(starts >= lo) and np.all(starts <= hi)
        if test_mode:
            assert np.all(np.diff(starts) > 0)
        else:
            assert np.all(np.diff(starts) >= 0)
        # Long enough: no clip leaves the video, no index wraps.
        assert teacher.min() >= 0 and teacher.max() < total_frames
        np.testing.assert_array_equal(
            teacher, starts[:, None] + np.arange(clip_len) * frame_interval)


def test_frame_inds_is_the_sorted_unique_union():
    # Overlapping clips: 3 clips of 16 in 30 frames share frames.
    results = _sample(
        30, clip_len=16, num_segments=3, student_offsets=(0, 9),
        test_mode=True)
    teacher, student = results['teacher_inds'], results['student_inds']
    frame_inds = results['frame_inds']
    assert len(np.unique(teacher)) < teacher.size  # the clips do overlap
    np.testing.assert_array_equal(frame_inds, np.unique(teacher))
    assert np.all(np.diff(frame_inds) > 0)  # each frame decoded once
    assert set(student.tolist()) <= set(frame_inds.tolist())


def test_training_is_random_within_bounds_and_seeded():
    total_frames, clip_len = 24, 16  # clip starts 0..8

    def draw():
        return [
            int(_sample(total_frames, clip_len=clip_len)['clip_starts'][0])
            for _ in range(200)
        ]

    np.random.seed(1)
    first = draw()
    np.random.seed(1)
    assert draw() == first
    assert min(first) >= 0 and max(first) <= 8
    # Uniform over the 9 valid starts: 200 draws hit every one of them.
    assert set(first) == set(range(9))


def test_test_mode_is_deterministic():
    np.random.seed(0)
    first = _sample(50, clip_len=8, num_segments=5, test_mode=True)
    np.random.seed(123)
    second = _sample(50, clip_len=8, num_segments=5, test_mode=True)
    np.testing.assert_array_equal(first['teacher_inds'],
                                  second['teacher_inds'])


def test_short_video_loop_wraps():
    results = _sample(10, clip_len=16, out_of_bound_opt='loop',
                      test_mode=True)
    expected = np.concatenate([np.arange(10), np.arange(6)])
    np.testing.assert_array_equal(results['teacher_inds'], expected[None])
    np.testing.assert_array_equal(results['student_inds'], [0])
    np.testing.assert_array_equal(results['frame_inds'], np.arange(10))


def test_short_video_loop_wraps_student_offsets():
    results = _sample(
        10, clip_len=16, student_offsets=(0, 12), out_of_bound_opt='loop',
        test_mode=True)
    np.testing.assert_array_equal(results['student_inds'], [0, 2])


def test_short_video_repeat_last_clamps():
    results = _sample(10, clip_len=16, out_of_bound_opt='repeat_last',
                      test_mode=True)
    expected = np.concatenate([np.arange(10), np.full(6, 9)])
    np.testing.assert_array_equal(results['teacher_inds'], expected[None])
    np.testing.assert_array_equal(results['frame_inds'], np.arange(10))


def test_short_video_error_names_the_file():
    with pytest.raises(ValueError, match='short_video.mp4'):
        _sample(10, filename='short_video.mp4', clip_len=16,
                out_of_bound_opt='error')
    # Exactly one clip long is fine.
    results = _sample(16, clip_len=16, out_of_bound_opt='error')
    np.testing.assert_array_equal(results['teacher_inds'],
                                  np.arange(16)[None])


def test_short_video_error_counts_the_frame_interval():
    # A clip of 8 at interval 2 spans (8 - 1) * 2 + 1 = 15 frames.
    _sample(15, clip_len=8, frame_interval=2, out_of_bound_opt='error')
    with pytest.raises(ValueError, match='frames_dir'):
        sampler = TRANSFORMS.build(
            dict(type='HalluSampleFrames', clip_len=8, frame_interval=2,
                 out_of_bound_opt='error'))
        sampler(dict(frame_dir='frames_dir', total_frames=14))


def test_start_index_offsets_every_index():
    # Rawframe folders number frames from 1.
    zero = _sample(24, clip_len=16, num_segments=2, student_offsets=(0, 3),
                   test_mode=True)
    one = _sample(24, clip_len=16, num_segments=2, student_offsets=(0, 3),
                  test_mode=True, start_index=1)
    for key in ('frame_inds', 'student_inds', 'teacher_inds'):
        np.testing.assert_array_equal(one[key], zero[key] + 1)
    # The feature bank's key stays 0-based.
    np.testing.assert_array_equal(one['clip_starts'], zero['clip_starts'])
    # Start index also applies after wrapping a short video.
    looped = _sample(10, clip_len=16, test_mode=True, start_index=1)
    np.testing.assert_array_equal(looped['frame_inds'], np.arange(1, 11))


def test_without_teacher_only_student_frames_are_decoded():
    results = _sample(
        60, clip_len=16, num_segments=3, student_offsets=(0, 4),
        with_teacher=False, test_mode=True, start_index=1)
    assert 'teacher_inds' not in results
    np.testing.assert_array_equal(results['frame_inds'],
                                  np.unique(results['student_inds']))
    assert len(results['frame_inds']) == 6
    with_teacher = _sample(
        60, clip_len=16, num_segments=3, student_offsets=(0, 4),
        test_mode=True, start_index=1)
    np.testing.assert_array_equal(results['student_inds'],
                                  with_teacher['student_inds'])


@pytest.mark.parametrize('kwargs,match', [
    (dict(clip_len=0), 'positive'),
    (dict(num_segments=0), 'positive'),
    (dict(frame_interval=0), 'positive'),
    (dict(student_offsets=()), 'student_offsets'),
    (dict(clip_len=16, student_offsets=(0, 16)), 'student_offsets'),
    (dict(student_offsets=(-1, )), 'student_offsets'),
    (dict(student_offsets=((0, 1), )), 'student_offsets'),
    (dict(out_of_bound_opt='clamp'), 'clamp'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='HalluSampleFrames', **kwargs))


@pytest.mark.parametrize('total_frames', [0, None])
def test_no_frames_raises_naming_the_file(total_frames):
    with pytest.raises(ValueError, match='empty.mp4'):
        _sample(total_frames, filename='empty.mp4')


def test_repr_lists_the_arguments():
    sampler = TRANSFORMS.build(
        dict(type='HalluSampleFrames', clip_len=8, student_offsets=(0, 2)))
    assert 'clip_len=8' in repr(sampler)
    assert 'student_offsets=[0, 2]' in repr(sampler)
