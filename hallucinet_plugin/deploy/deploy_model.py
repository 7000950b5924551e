"""The student-only deploy path: :class:`DeployModel` (pixels in, class
scores and optionally the hallucinated representation out) and the
teacher's counterpart for the benchmark. See docs/user_guides/deployment.md."""
import contextlib
import logging
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from ..models.utils import reduce_to_vector
from ..utils.checkpoint import load_checkpoint_into
from ..utils.typing_utils import PathLike
from .spec import student_input_spec, without_pretrained


# ----------------------------------------------------------------- models
@contextlib.contextmanager
def quiet_logger(level: int = logging.WARNING):
    """Silence mmengine's INFO logs (``init_weights`` lists every
    parameter) for the duration of a block."""
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def build_student(cfg: Config,
                  checkpoint: Optional[PathLike] = None,
                  pretrained: bool = False) -> nn.Module:
    """The recognizer of ``cfg.model`` without its teacher, in eval mode.

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): A checkpoint (``state_dict`` or
            ``{'state_dict': ...}``, as written by the Runner or
            ``torch.save``), loaded with ``weights_only=True``; its
            ``teacher.*`` keys are ignored. ``None``: the config's own
            initialisation.
        pretrained (bool): Keep the config's ``pretrained`` weights
            (downloads); by default they are switched off, since a
            checkpoint or random weights follow.

    Returns:
        nn.Module: The student.
    """
    init_default_scope('mmaction')
    model_cfg = dict(cfg.model)
    if not pretrained:
        model_cfg = without_pretrained(model_cfg)
    if 'teacher' in model_cfg:
        # The deploy path never runs the teacher.
        model_cfg.update(teacher=None)
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        with quiet_logger():
            model.init_weights()
    else:
        load_student_checkpoint(model, checkpoint)
    return model.eval()


def load_student_checkpoint(model: nn.Module, checkpoint: PathLike) -> None:
    """Load a student's weights strictly (teacher keys ignored)."""
    load_checkpoint_into(model, checkpoint, exclude=('teacher.', ))


def _normalizer(preprocessor: Optional[nn.Module],
                shape: Tuple[int, ...]) -> Tuple[torch.Tensor, torch.Tensor,
                                                 bool]:
    """``mean``, ``std`` (reshaped to ``shape``) and ``to_rgb`` of an
    mmaction2 data preprocessor; identity when it does not normalise."""
    if preprocessor is not None and getattr(preprocessor,
                                            '_enable_normalize', False):
        mean = preprocessor.mean.detach().float().reshape(shape)
        std = preprocessor.std.detach().float().reshape(shape)
    else:
        mean, std = torch.zeros(shape), torch.ones(shape)
    return mean.clone(), std.clone(), bool(
        getattr(preprocessor, 'to_rgb', False))


class DeployModel(nn.Module):
    """The student-only deploy path: pixels -> scores (and hallucination).

    The data preprocessor's normalisation, then the recognizer's own
    prediction, :meth:`HalluciNet.predict_scores`, as ``tools/test.py``
    reports it; see the module docstring for the input and outputs.

    Args:
        model (nn.Module): A :class:`HalluciNet` without teacher (see
            :func:`build_student`), in eval mode.
        num_frames (int): Frames per prediction ``F`` (views x segments x
            frames per segment).
        with_hallu (bool): Also return the hallucinated representation.
    """

    def __init__(self,
                 model: nn.Module,
                 num_frames: int,
                 with_hallu: bool = False) -> None:
        super().__init__()
        if getattr(model, 'teacher', None) is not None:
            raise ValueError('the deploy path runs no teacher: build the '
                             'model with build_student()')
        if not hasattr(model, 'predict_scores'):
            raise TypeError(f'{type(model).__name__} is not a HalluciNet '
                            'recognizer')
        if with_hallu and model.hallu_head is None:
            raise ValueError('with_hallu: the model has no hallu_head (a '
                             'vanilla student hallucinates nothing)')
        if num_frames % model.frames_per_segment:
            raise ValueError(
                f'{num_frames} frames per prediction is not a multiple of '
                f'frames_per_segment={model.frames_per_segment}')
        pre = model.data_preprocessor
        if getattr(pre, 'format_shape', 'NCHW') != 'NCHW':
            raise ValueError('the deploy path takes 2D frames (format_shape '
                             f"'NCHW'), got {pre.format_shape!r}")
        self.model = model
        self.num_frames = num_frames
        self.with_hallu = with_hallu
        mean, std, self.to_rgb = _normalizer(pre, (1, 1, -1, 1, 1))
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)

    @property
    def num_segments(self) -> int:
        return self.num_frames // self.model.frames_per_segment

    def forward(
        self, imgs: torch.Tensor
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Scores ``(B, num_classes)`` and, with ``with_hallu``, the
        hallucination ``(B, S, D)`` of pixels ``(B, F, 3, H, W)`` or
        ``(B, 3, H, W)``."""
        if imgs.dim() == 4:
            # [B, 3, H, W] -> [B, 1, 3, H, W]
            imgs = imgs.unsqueeze(1)
        if imgs.dim() != 5 or imgs.shape[1] != self.num_frames:
            raise ValueError(
                f'expected pixels (B, {self.num_frames}, 3, H, W), got '
                f'{tuple(imgs.shape)}')
        if self.to_rgb:
            imgs = imgs[:, :, [2, 1, 0]]
        imgs = (imgs - self.mean) / self.std
        return self.model.predict_scores(imgs, return_hallu=self.with_hallu)


class TeacherDeployModel(nn.Module):
    """The 3D teacher as a classifier of raw clips (for the benchmark).

    Args:
        teacher (nn.Module): An mmaction2 3D recognizer (its class scores,
            ``average_clips`` applied over the ``S`` clips) or a bare 3D
            backbone (its pooled features).
        preprocessor (nn.Module, optional): The teacher view's
            normalisation (``HalluciNetDataPreprocessor.teacher``).
    """

    def __init__(self,
                 teacher: nn.Module,
                 preprocessor: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.teacher = teacher.eval()
        mean, std, self.to_rgb = _normalizer(preprocessor,
                                             (1, 1, -1, 1, 1, 1))
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, K)`` (or features ``(B, D)``) of pixels
        ``(B, S, 3, T, H, W)``."""
        if self.to_rgb:
            clips = clips[:, :, [2, 1, 0]]
        clips = (clips - self.mean) / self.std
        teacher = self.teacher
        num_segs = clips.shape[1]
        if getattr(teacher, 'with_cls_head', False):
            out, _ = teacher.extract_feat(clips, stage='head')
            if hasattr(teacher.cls_head, 'average_clip'):
                out = teacher.cls_head.average_clip(out, num_segs=num_segs)
        elif hasattr(teacher, 'extract_feat'):
            out, _ = teacher.extract_feat(clips, stage='backbone')
            out = reduce_to_vector(out)
        else:
            # [B, S, C, T, H, W] -> [B * S, C, T, H, W]
            out = reduce_to_vector(teacher(clips.flatten(0, 1)))
        return out.reshape(clips.shape[0], -1)


def build_deploy_model(cfg: Config,
                       checkpoint: Optional[PathLike] = None,
                       with_hallu: bool = False,
                       num_frames: Optional[int] = None) -> DeployModel:
    """:class:`DeployModel` of a config; ``num_frames`` defaults to the
    test pipeline's (:func:`student_input_spec`)."""
    if num_frames is None:
        num_frames = student_input_spec(cfg)['num_frames']
    return DeployModel(build_student(cfg, checkpoint), num_frames,
                       with_hallu).eval()


def input_shape(deploy: DeployModel, size: Tuple[int, int]) -> Tuple:
    """Per-sample input shape of a deploy model: ``(F, 3, H, W)``, or
    ``(3, H, W)`` when ``F == 1``."""
    if deploy.num_frames == 1:
        return (3, *size)
    return (deploy.num_frames, 3, *size)
