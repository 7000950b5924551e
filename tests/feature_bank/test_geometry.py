"""``feature_bank/geometry.py``: which windows a bank holds and which one
serves a sampled clip start."""
import numpy as np

from hallucinet_plugin.feature_bank.geometry import (
    clip_span,
    default_stride,
    nearest_windows,
    window_starts,
)


def test_windows_while_the_clip_fits():
    assert clip_span(16, 1) == 16 and clip_span(8, 2) == 15
    # 20 frames, 8-frame clips every 4: starts 0, 4, 8, 12 (12 + 8 = 20).
    assert window_starts(20, 8, 1, 4).tolist() == [0, 4, 8, 12]
    assert window_starts(20, 8, 2, 2).tolist() == [0, 2, 4]
    # Shorter than a clip: one window, looped or padded by the sampler.
    assert window_starts(5, 8, 1, 4).tolist() == [0]
    assert window_starts(20, 8, 1, 4).dtype == np.int64


def test_default_stride_keeps_starts_within_half_a_stride():
    assert default_stride(16) == 4 and default_stride(8) == 2
    assert default_stride(16, 2) == 8 and default_stride(1) == 1
    for clip_len in (8, 16):
        stride = default_stride(clip_len)
        starts = np.arange(0, 41)
        windows = window_starts(60, clip_len, 1, stride)
        picked = windows[nearest_windows(starts, stride, len(windows))]
        assert np.abs(picked - starts).max() <= stride // 2


def test_nearest_windows_odd_stride():
    starts = np.arange(0, 13)
    picked = nearest_windows(starts, 3, 5) * 3
    windows = np.arange(0, 13, 3)
    expected = windows[np.abs(starts[:, None] - windows).argmin(1)]
    assert np.array_equal(picked, expected)
