import numpy as np
import pytest
from mmaction.registry import TRANSFORMS

import hallucinet_plugin  # noqa: F401


def sample(total_frames, **kwargs):
    results = dict(total_frames=total_frames, start_index=0,
                   filename='dive.mp4')
    results.update(kwargs.pop('results', {}))
    cfg = dict(type='HalluSparseSampleFrames')
    cfg.update(kwargs)
    return TRANSFORMS.build(cfg)(results)


def test_paper_default_every_16th_of_96():
    out = sample(200)
    np.testing.assert_array_equal(out['student_inds'],
                                  [0, 16, 32, 48, 64, 80])
    assert out['num_clips'] == 6 and out['teacher_inds'].shape == (6, 16)
    np.testing.assert_array_equal(out['teacher_inds'][5], np.arange(80, 96))
    # The six clips tile the window: every frame decoded once.
    np.testing.assert_array_equal(out['frame_inds'], np.arange(96))


def test_window_starts_at_the_dive_and_is_deterministic():
    # As MTLAQADataset gives a dive: start_index = first file + start_frame.
    kwargs = dict(
        results=dict(start_frame=1000, end_frame=1200, start_index=1000))
    a = sample(5000, **kwargs)
    b = sample(5000, **kwargs)
    np.testing.assert_array_equal(a['student_inds'], 1000 + np.arange(
        0, 96, 16))
    np.testing.assert_array_equal(a['frame_inds'], b['frame_inds'])
    # rawframes are numbered from 1
    c = sample(5000, results=dict(start_frame=1000, start_index=1001))
    np.testing.assert_array_equal(c['student_inds'],
                                  1001 + np.arange(0, 96, 16))


def test_short_dive_repeats_its_last_frame():
    out = sample(
        5000, results=dict(start_frame=100, end_frame=159, start_index=100))
    # 60-frame dive: student frames 100..148, clips clamped at frame 159.
    np.testing.assert_array_equal(out['student_inds'],
                                  [100, 116, 132, 148, 159, 159])
    assert out['teacher_inds'].max() == 159
    assert out['teacher_inds'].min() == 100


def test_short_dive_loop_and_error():
    out = sample(40, window=48, stride=16, clip_len=8,
                 out_of_bound_opt='loop')
    np.testing.assert_array_equal(out['student_inds'], [0, 16, 32])
    out = sample(30, window=48, stride=16, clip_len=8,
                 out_of_bound_opt='loop')
    np.testing.assert_array_equal(out['student_inds'], [0, 16, 2])
    with pytest.raises(ValueError, match='dive.mp4'):
        sample(30, window=48, stride=16, clip_len=8,
               out_of_bound_opt='error')


def test_configurable_window_stride_and_offsets():
    out = sample(500, window=64, stride=8, clip_len=8,
                 student_offsets=(0, 4), with_teacher=False)
    assert out['num_clips'] == 8 and 'teacher_inds' not in out
    np.testing.assert_array_equal(out['student_inds'][:4], [0, 4, 8, 12])
    with pytest.raises(ValueError):
        sample(10, window=0)
