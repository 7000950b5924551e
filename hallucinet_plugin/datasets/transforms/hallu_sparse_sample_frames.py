from typing import Dict, Sequence, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS

from .hallu_sample_frames import HalluSampleFrames


@TRANSFORMS.register_module()
class HalluSparseSampleFrames(HalluSampleFrames):
    """Every ``stride``-th frame of a fixed-length window, each hallucinating
    the teacher clip that starts at it.

    The paper's long-term set-up (MTL-AQA dives): a dive is truncated to its
    first ``window`` = 96 frames and the student sees every ``stride`` = 16th
    frame, i.e. frames 0, 16, ..., 80 of the dive; each frame's hallucinated
    16-frame future "fills the hole" up to the next one. The student frames
    are deterministic, in training and test alike.

    The window is the dive as mmaction2 gives a trimmed segment of a longer
    video: it starts at ``results['start_index']``, which
    :class:`MTLAQADataset` sets to the dive's ``start_frame`` plus the index
    of the first file, and holds ``end_frame - start_frame + 1`` frames
    (``end_frame`` inclusive; without both, ``total_frames``). Indices are
    relative to ``start_index`` like those of mmaction2's samplers, so
    ``clip_starts + start_index`` is the clip's frame in the event video
    (the feature bank's key). A dive shorter than the window, or a clip
    running past its end, follows ``out_of_bound_opt`` *within the dive*:
    ``'repeat_last'`` (default) repeats the dive's last frame, ``'loop'``
    wraps to the dive's start, ``'error'`` rejects it. The sampler may come
    before or after ``DecordInit`` (which sets ``total_frames`` to the whole
    video).

    Args:
        window (int): Frames of the dive used.
        stride (int): Distance between student frames.
        clip_len (int): As in :class:`HalluSampleFrames`.
        frame_interval (int): As in :class:`HalluSampleFrames`.
        student_offsets (Sequence[int]): As in :class:`HalluSampleFrames`.
        with_teacher (bool): As in :class:`HalluSampleFrames`.
        test_mode (bool): As in :class:`HalluSampleFrames`.
        out_of_bound_opt (str): As in :class:`HalluSampleFrames`.
    """

    def __init__(self,
                 window: int = 96,
                 stride: int = 16,
                 clip_len: int = 16,
                 frame_interval: int = 1,
                 student_offsets: Sequence[int] = (0, ),
                 with_teacher: bool = True,
                 test_mode: bool = False,
                 out_of_bound_opt: str = 'repeat_last') -> None:
        if window < 1 or stride < 1:
            raise ValueError('window and stride must be positive')
        super().__init__(
            clip_len=clip_len,
            num_segments=len(range(0, window, stride)),
            frame_interval=frame_interval,
            student_offsets=student_offsets,
            with_teacher=with_teacher,
            test_mode=test_mode,
            out_of_bound_opt=out_of_bound_opt)
        self.window = window
        self.stride = stride

    def _window(self, results: Dict) -> Tuple[int, int]:
        # start_index already points at the dive's first frame; adding
        # start_frame again would read past the dive (twice its start).
        start, end = results.get('start_frame'), results.get('end_frame')
        if start is not None and end is not None:
            return 0, int(end) - int(start) + 1
        return 0, int(results['total_frames'])

    def _clip_starts(self, length: int) -> np.ndarray:
        return np.arange(0, self.window, self.stride, dtype=np.int64)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(window={self.window}, '
                f'stride={self.stride}, clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, '
                f'student_offsets={self.student_offsets.tolist()}, '
                f'with_teacher={self.with_teacher}, '
                f'out_of_bound_opt={self.out_of_bound_opt})')
