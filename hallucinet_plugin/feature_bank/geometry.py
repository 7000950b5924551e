"""Window geometry of the teacher feature bank: which clips it holds
and which one serves a sampled clip start."""

import numpy as np


# --------------------------------------------------------------- windows
def clip_span(clip_len: int, frame_interval: int) -> int:
    """Frames a clip covers, first to last."""
    return (clip_len - 1) * frame_interval + 1


def default_stride(clip_len: int, frame_interval: int = 1) -> int:
    """Window stride putting every clip start within ``stride // 2`` frames
    of a window (4 for 16-frame clips)."""
    return max(1, clip_len * frame_interval // 4)


def window_starts(total_frames: int, clip_len: int, frame_interval: int,
                  stride: int) -> np.ndarray:
    """First frames of a video's windows: ``0, stride, ...`` while the clip
    fits, or just 0 for a video shorter than a clip.

    Returns:
        np.ndarray: ``(W, )`` int64.
    """
    last = max(total_frames - clip_span(clip_len, frame_interval), 0)
    return np.arange(0, last + 1, stride, dtype=np.int64)


def nearest_windows(clip_starts: np.ndarray, stride: int,
                    num_windows: int) -> np.ndarray:
    """Index of the window that starts nearest to each clip start.

    A tie (a start exactly between two windows, even strides only) goes to
    the earlier window; starts after the last window get the last one.

    Args:
        clip_starts (np.ndarray): ``(S, )`` first frames of the clips.
        stride (int): The bank's window stride.
        num_windows (int): Windows of the video.

    Returns:
        np.ndarray: ``(S, )`` int64 window indices.
    """
    starts = np.asarray(clip_starts, dtype=np.int64)
    # Rounding half down: (c + (stride - 1) // 2) // stride.
    index = (starts + (stride - 1) // 2) // stride
    # np.minimum/maximum: np.clip's wrapper costs more than the work.
    return np.minimum(np.maximum(index, 0), num_windows - 1)
