from typing import Dict, Sequence, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class HalluSampleFrames(BaseTransform):
    """Sample student frames and the teacher clip that starts at each.

    HalluciNet's student sees frame ``j`` (or frames ``j + o`` for the
    offsets ``o`` of HalluciNet(2f)) and hallucinates what a 3D teacher
    computes from the ``clip_len``-frame clip that starts at ``j``. With
    ``num_segments`` > 1 (TSN/TSM/TRN-style inputs), the span of valid clip
    starts is split into ``num_segments`` equal bins and every segment gets
    its own student frame(s) and teacher clip.

    Placement of the clip start ``j`` in each bin: uniformly random in
    training, the bin's centre in test mode. With one segment in test mode
    the clip sits at the video's centre: the static protocol of the paper
    (UCF-static, HMDB-static).

    Videos shorter than a clip (``(clip_len - 1) * frame_interval + 1``
    frames) follow ``out_of_bound_opt``: ``'loop'`` wraps indices around
    like mmaction2's ``SampleFrames``, ``'repeat_last'`` repeats the last
    frame, ``'error'`` rejects the video.

    Only the frames actually needed are decoded, once: ``frame_inds`` is the
    sorted union of student and teacher frames; the decoded list is split
    into the two views later by :class:`HalluSplitViews`.

    Required keys: ``total_frames``, ``start_index`` (optional, default 0).

    Added keys:
        - frame_inds (np.ndarray): Sorted unique indices to decode.
        - student_inds (np.ndarray): ``(num_segments * F, )`` absolute
          student frame indices, segment-major, ``F = len(student_offsets)``.
        - teacher_inds (np.ndarray): ``(num_segments, clip_len)`` absolute
          teacher clip indices (only with ``with_teacher``).
        - clip_starts (np.ndarray): ``(num_segments, )`` first frame of each
          teacher clip, before ``start_index`` (the feature bank's key).
        - clip_len (int): ``F``; num_clips (int): ``num_segments``; both
          in mmaction2's sense, for ``FormatShape``.

    Args:
        clip_len (int): Frames in the teacher clip.
        num_segments (int): Student segments per video.
        frame_interval (int): Temporal stride of the teacher clip.
        student_offsets (Sequence[int]): Positions inside the teacher clip
            (in clip frames) of the student frames; ``(0, )`` is the paper's
            first-frame student, ``(0, k)`` HalluciNet(2f).
        with_teacher (bool): Emit teacher clip indices. Test pipelines and
            feature-bank training set ``False``.
        test_mode (bool): Deterministic placement.
        out_of_bound_opt (str): ``'loop'``, ``'repeat_last'`` or
            ``'error'``.
    """

    def __init__(self,
                 clip_len: int = 16,
                 num_segments: int = 1,
                 frame_interval: int = 1,
                 student_offsets: Sequence[int] = (0, ),
                 with_teacher: bool = True,
                 test_mode: bool = False,
                 out_of_bound_opt: str = 'loop') -> None:
        if clip_len < 1 or num_segments < 1 or frame_interval < 1:
            raise ValueError('clip_len, num_segments and frame_interval must '
                             'be positive')
        offsets = np.asarray(student_offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets.min() < 0 \
                or offsets.max() >= clip_len:
            raise ValueError(f'student_offsets {list(student_offsets)} must '
                             f'be a non-empty list in [0, {clip_len - 1}]')
        if out_of_bound_opt not in ('loop', 'repeat_last', 'error'):
            raise ValueError(f'unknown out_of_bound_opt {out_of_bound_opt!r}')
        self.clip_len = clip_len
        self.num_segments = num_segments
        self.frame_interval = frame_interval
        self.student_offsets = offsets
        self.with_teacher = with_teacher
        self.test_mode = test_mode
        self.out_of_bound_opt = out_of_bound_opt

    def _window(self, results: Dict) -> Tuple[int, int]:
        """The frames ``[first, first + length)`` clips are drawn from."""
        return 0, results['total_frames']

    def _clip_starts(self, length: int) -> np.ndarray:
        """Clip starts relative to the window, shape ``(num_segments, )``."""
        span = (self.clip_len - 1) * self.frame_interval + 1
        # Starts in [0, last] keep the whole clip inside the window.
        last = max(length - span, 0)
        edges = np.linspace(0, last + 1, self.num_segments + 1)
        if self.test_mode:
            starts = (edges[:-1] + edges[1:] - 1) / 2
        else:
            starts = edges[:-1] + np.random.rand(self.num_segments) * (
                edges[1:] - edges[:-1])
        return np.clip(np.floor(starts).astype(np.int64), 0, last)

    def _bound(self, inds: np.ndarray, length: int,
               filename: str) -> np.ndarray:
        if inds.max() < length:
            return inds
        if self.out_of_bound_opt == 'error':
            raise ValueError(
                f'{filename}: {length} frames, shorter than the '
                f'teacher clip of {self.clip_len} frames at interval '
                f'{self.frame_interval} (out_of_bound_opt="error")')
        if self.out_of_bound_opt == 'loop':
            return inds % length
        return np.minimum(inds, length - 1)

    def transform(self, results: Dict) -> Dict:
        filename = results.get('filename', results.get('frame_dir', '?'))
        first, length = self._window(results)
        if length is None or length < 1:
            raise ValueError(f'{filename}: no frames to sample (window of '
                             f'{length} frames)')
        starts = self._clip_starts(length)
        clip = np.arange(self.clip_len) * self.frame_interval
        # [S, 1] + [1, T] -> [S, T]
        teacher = first + self._bound(starts[:, None] + clip[None], length,
                                      filename)
        student = teacher[:, self.student_offsets].reshape(-1)
        offset = results.get('start_index', 0)
        needed = teacher if self.with_teacher else student
        results['frame_inds'] = np.unique(needed) + offset
        results['student_inds'] = student + offset
        results['clip_starts'] = teacher[:, 0]
        if self.with_teacher:
            results['teacher_inds'] = teacher + offset
        results['clip_len'] = len(self.student_offsets)
        results['num_clips'] = self.num_segments
        results['frame_interval'] = self.frame_interval
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'num_segments={self.num_segments}, '
                f'frame_interval={self.frame_interval}, '
                f'student_offsets={self.student_offsets.tolist()}, '
                f'with_teacher={self.with_teacher}, '
                f'test_mode={self.test_mode}, '
                f'out_of_bound_opt={self.out_of_bound_opt})')
