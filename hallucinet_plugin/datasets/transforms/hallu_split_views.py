from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class HalluSplitViews(BaseTransform):
    """Split the decoded frames into the student and the teacher view.

    Place it after the geometric transforms (crop, flip, ...) that both
    views share, so they see the same region of the same moment, and before
    ``FormatShape``. Each view is then resized to its own resolution (the
    paper: 227 px student, 112 px teacher); normalisation happens per view in
    :class:`HalluciNetDataPreprocessor`.

    Required keys: ``imgs`` (decoded in the order of ``frame_inds``),
    ``frame_inds``, ``student_inds``; ``teacher_inds`` for the teacher view.

    Modified keys: ``imgs`` becomes the student frames, ``(S * F)`` arrays
    of ``(H, W, C)``. Added keys: ``teacher_imgs``, ``(S, C, T, H, W)``
    uint8 (when ``teacher_inds`` is present).

    Args:
        student_scale (Sequence[int], optional): ``(w, h)`` of the student
            frames; ``None`` keeps the shared size.
        teacher_scale (Sequence[int], optional): ``(w, h)`` of the teacher
            frames; ``None`` keeps the shared size.
        interpolation (str): mmcv interpolation for both resizes.
    """

    def __init__(self,
                 student_scale: Optional[Sequence[int]] = None,
                 teacher_scale: Optional[Sequence[int]] = (112, 112),
                 interpolation: str = 'bilinear') -> None:
        self.student_scale = student_scale and tuple(student_scale)
        self.teacher_scale = teacher_scale and tuple(teacher_scale)
        self.interpolation = interpolation

    @staticmethod
    def _positions(frame_inds: np.ndarray, wanted) -> np.ndarray:
        positions = np.searchsorted(frame_inds, wanted)
        positions = np.minimum(positions, len(frame_inds) - 1)
        if not np.array_equal(frame_inds[positions], wanted):
            raise ValueError(f'frames {sorted(set(np.ravel(wanted)))} were '
                             f'not all decoded (frame_inds {frame_inds})')
        return positions

    def _view(self, imgs, positions, scale):
        frames = [imgs[i] for i in positions]
        if scale is not None:
            frames = [
                mmcv.imresize(f, scale, interpolation=self.interpolation)
                for f in frames
            ]
        return frames

    def transform(self, results: Dict) -> Dict:
        imgs = results['imgs']
        frame_inds = np.asarray(results['frame_inds'])
        if len(imgs) != len(frame_inds):
            raise ValueError(
                f'{results.get("filename", "?")}: {len(imgs)} decoded frames '
                f'for {len(frame_inds)} frame_inds; HalluSplitViews must come '
                'after the decode and before transforms that change the '
                'number of frames')
        # Decoded frames follow the sorted unique frame_inds.
        student = self._positions(frame_inds, results['student_inds'])
        if 'teacher_inds' in results:
            teacher_inds = results['teacher_inds']
            positions = self._positions(frame_inds, teacher_inds.reshape(-1))
            clips = np.stack(
                self._view(imgs, positions, self.teacher_scale))
            # [S * T, H, W, C] -> [S, C, T, H, W]
            clips = clips.reshape(teacher_inds.shape + clips.shape[1:])
            results['teacher_imgs'] = np.ascontiguousarray(
                clips.transpose(0, 4, 1, 2, 3))
        results['imgs'] = self._view(imgs, student, self.student_scale)
        results['img_shape'] = results['imgs'][0].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'student_scale={self.student_scale}, '
                f'teacher_scale={self.teacher_scale}, '
                f'interpolation={self.interpolation})')
