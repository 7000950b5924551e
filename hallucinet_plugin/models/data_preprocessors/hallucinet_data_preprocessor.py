from typing import Dict, Optional, Sequence, Union

import torch
from mmaction.models import ActionDataPreprocessor
from mmaction.registry import MODELS
from mmengine.model.utils import stack_batch


@MODELS.register_module()
class HalluciNetDataPreprocessor(ActionDataPreprocessor):
    """Per-view normalisation of the student frames and the teacher clips.

    The student and the teacher see the same moment with their own
    normalisation (the paper: ImageNet mean/std for the VGG student,
    ``[114.7748, 107.7354, 99.4750]`` with std 1 for Hara's 3D-ResNeXt).
    The student view is handled exactly like mmaction2's
    :class:`ActionDataPreprocessor` (the arguments below); the teacher view
    by a second one built from ``teacher``. Pre-computed teacher targets
    (``teacher_feats``, the feature bank) are only stacked.

    Inputs may be a plain tensor list (test pipelines, vanilla students) or
    a dict with the keys ``imgs`` and optionally ``teacher_imgs`` and
    ``teacher_feats``; the output keeps that structure.

    Args:
        mean, std, to_rgb, to_float32, blending, format_shape: As in
            :class:`ActionDataPreprocessor`, for the student view.
            ``blending`` (mixup/cutmix) would mix the student frames but not
            their teacher targets, so it is refused when a teacher view or
            target is present.
        teacher (dict, optional): ``mean``, ``std``, ``to_rgb`` of the
            teacher view; ``format_shape`` defaults to ``'NCTHW'``.
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = None,
                 std: Optional[Sequence[Union[float, int]]] = None,
                 to_rgb: bool = False,
                 to_float32: bool = True,
                 blending: Optional[dict] = None,
                 format_shape: str = 'NCHW',
                 teacher: Optional[dict] = None) -> None:
        super().__init__(
            mean=mean,
            std=std,
            to_rgb=to_rgb,
            to_float32=to_float32,
            blending=blending,
            format_shape=format_shape)
        teacher = {'format_shape': 'NCTHW', **(teacher or {})}
        self.teacher = ActionDataPreprocessor(**teacher)

    def preprocess(self,
                   inputs: Union[Sequence[torch.Tensor], Dict],
                   data_samples,
                   training: bool = False):
        if not isinstance(inputs, dict):
            return super().preprocess(inputs, data_samples, training)
        unknown = set(inputs) - {'imgs', 'teacher_imgs', 'teacher_feats'}
        if unknown:
            raise KeyError(f'HalluciNetDataPreprocessor: unknown input keys '
                           f'{sorted(unknown)}; expected imgs, teacher_imgs, '
                           'teacher_feats (check PackActionInputs.'
                           'collect_keys)')
        if training and self.blending is not None and len(inputs) > 1:
            raise ValueError('batch blending (mixup/cutmix) mixes the '
                             'student frames but not their teacher targets; '
                             'remove `blending` for hallucination training')
        out = dict()
        out['imgs'], data_samples = super().preprocess(
            inputs['imgs'], data_samples, training)
        if 'teacher_imgs' in inputs:
            out['teacher_imgs'], _ = self.teacher.preprocess(
                inputs['teacher_imgs'], data_samples, False)
        if 'teacher_feats' in inputs:
            out['teacher_feats'] = stack_batch(inputs['teacher_feats']).float()
        return out, data_samples
