from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmaction.models import Recognizer2D
from mmaction.registry import MODELS
from mmaction.utils import SampleList

from ...utils import set_pred_label, set_pred_score
from ...utils.config import building_runner_config
from ...utils.typing_utils import ConfigType, OptConfigType
from ..teachers import FrozenTeacher
from ..teachers.frozen_teacher import drop_teacher_state, fill_teacher_state
from ..utils import reduce_to_vector
from .channels import check_channels, check_teacher_view, teacher_width_error
from .hallucination_section import apply_section
from .labelled_rows import (
    labelled_head_loss,
    labelled_samples,
    unlabelled_hallu_loss,
)

FUSIONS = ('concat', 'direct', 'none')
_SECTION_ARGS = ('backbone', 'cls_head', 'data_preprocessor', 'teacher',
                 'hallu_head', 'fusion')
# What the 0.x spellings of HalluciNet's arguments are now.
_TEACHER = ("teacher=dict(type='FrozenTeacher', model=<the teacher's model "
            "config or file>, checkpoint=..., layer=..., pool=...)")
LEGACY_ARGS = {
    'teacher_ckpt': f'the checkpoint of {_TEACHER}',
    'teacher_layer': f'the layer of {_TEACHER}',
    'teacher_pool': f'the pool of {_TEACHER}',
    'max_missing_teacher_keys': f'the max_missing_keys of {_TEACHER}',
    'keep_teacher_in_ckpt': f'in_checkpoint=True in {_TEACHER}',
    'hallu_cls_head': "type='LateFusionHalluciNet' (MoNet's two streams)",
    'late_fusion_weights': "type='LateFusionHalluciNet'",
    'appearance_ckpt': "type='LateFusionHalluciNet'",
    'freeze_appearance': "type='LateFusionHalluciNet'",
}


def _refuse_legacy(kind: str, legacy: Dict) -> None:
    """Raise naming the new spelling of each argument of the old one."""
    if not legacy:
        return
    known = {k: LEGACY_ARGS[k] for k in legacy if k in LEGACY_ARGS}
    if known:
        raise TypeError(f'{kind}: model.' + '; model.'.join(
            f'{k} is now {v}' for k, v in known.items()) +
            ' (docs/user_guides/your_recipe.md)')
    raise TypeError(f'{kind}.__init__() got unexpected keyword arguments '
                    f'{sorted(legacy)}')


def build_frozen_teacher(teacher: Union[ConfigType, nn.Module]) -> nn.Module:
    """``model.teacher``: a :class:`FrozenTeacher` (or subclass) config,
    built with ``MODELS.build``, or such a module."""
    if isinstance(teacher, FrozenTeacher):
        return teacher
    kind = teacher.get('type') if isinstance(teacher, dict) else None
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, FrozenTeacher)):
        what = f'type={kind!r}' if kind else repr(teacher)[:60]
        raise TypeError(
            f'model.teacher ({what}) is a frozen teacher: {_TEACHER}. The '
            "teacher's own model config (or file) goes in its model; "
            'model.teacher_ckpt, teacher_layer and teacher_pool are its '
            'checkpoint, layer and pool')
    return MODELS.build(teacher)


@MODELS.register_module()
class HalluciNet(Recognizer2D):
    """HalluciNet: a 2D-CNN student that hallucinates a 3D teacher.

    Parmar & Morris, "HalluciNet-ing Spatiotemporal Representations Using a
    2D-CNN", Signals 2021. The student sees one frame (or a few) per segment
    and, next to its main task, regresses the representation a frozen
    3D-CNN teacher computes from the clip that starts at that frame:
    ``L = L_cls + lambda * L_hallu``. At inference only the student runs.

    The forward pass is split into steps that can be called on their own,
    as timm's: :meth:`forward_features` (:meth:`extract_student_feat` ->
    :meth:`hallucinate` -> :meth:`fuse`) -> :meth:`forward_head`.
    Training adds :meth:`teacher_target` (the :class:`FrozenTeacher` or the
    feature bank). Every consumer of predictions calls one method,
    :meth:`predict_scores`: :meth:`predict` (``tools/test.py``), the deploy
    model that ONNX export, ``tools/inference.py`` and the benchmark run.
    Without ``hallu_head`` and with one frame per segment, the model is
    mmaction2's :class:`Recognizer2D` (for timm students, features are
    timm's pooled pre-logits in both cases): baselines and HalluciNet share
    one code path. MoNet's two streams are :class:`LateFusionHalluciNet`.

    Args:
        backbone (dict): Any 2D backbone mmaction2 can build: ``timm.<name>``
            (features are timm's pooled pre-logits, ``forward_head(...,
            pre_logits=True)``, whatever layout the model uses inside),
            mmaction2's own (ResNet, ResNetTSM, MobileNetV2TSM, ...) and
            ``torchvision.<name>`` (spatially averaged last maps).
        cls_head (dict, optional): Any mmaction2 2D head. Its
            ``in_channels`` must equal what :attr:`fusion` produces.
        neck (dict, optional): Only without hallucination.
        teacher (dict | FrozenTeacher, optional): The frozen 3D teacher,
            ``dict(type='FrozenTeacher', model=..., checkpoint=...,
            layer=..., pool=...)`` (see :class:`FrozenTeacher`), built with
            ``MODELS.build``, or such a module. Not needed when training
            from the feature bank (``teacher_feats`` in the inputs).
        hallu_head (dict, optional): The hallucination head (e.g.
            ``HallucinationHead``, ``MoNetHead``) with its ``loss_hallu``.
        fusion (str): What the classifier sees. ``'concat'``: appearance
            features and hallucinated representation concatenated (the
            paper's fused model); ``'direct'``: only the hallucinated
            representation (HalluciNet-direct); ``'none'``: only appearance
            features, hallucination as an auxiliary task.
        frames_per_segment (int): Student frames per segment (``len`` of the
            sampler's ``student_offsets``; 2 for HalluciNet(2f)). Their
            features are concatenated in order before hallucinating.
        train_cfg, test_cfg, data_preprocessor: As in
            :class:`Recognizer2D`; use :class:`HalluciNetDataPreprocessor`
            for the two views.
        hallucination (dict, optional): The ``model.hallucination`` section
            of a stock recipe: the teacher, heads, widths and normalisation
            are derived from it and the recipe's arguments
            (:func:`~.hallucination_section.apply_section`); the train
            pipeline needs ``HallucinationHook`` or the plugin's tools.

    The 0.x arguments ``teacher_ckpt``, ``teacher_layer``, ``teacher_pool``,
    ``max_missing_teacher_keys`` and ``keep_teacher_in_ckpt`` are the
    teacher's own (``FrozenTeacher``); ``hallu_cls_head`` and the other
    two-stream arguments belong to :class:`LateFusionHalluciNet`. Given
    here, they raise naming the new spelling.
    """

    def __init__(self,
                 backbone: ConfigType,
                 cls_head: OptConfigType = None,
                 neck: OptConfigType = None,
                 teacher: Optional[Union[ConfigType, nn.Module]] = None,
                 hallu_head: OptConfigType = None,
                 fusion: str = 'concat',
                 frames_per_segment: int = 1,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 hallucination: Optional[dict] = None,
                 **legacy) -> None:
        _refuse_legacy(type(self).__name__, legacy)
        if hallucination is not None:
            # A stock recipe's model and its section, built by a Runner that
            # got the raw config (HallucinationHook edits the pipeline).
            args = apply_section(
                dict(backbone=backbone, cls_head=cls_head, neck=neck,
                     data_preprocessor=data_preprocessor), hallucination,
                building_runner_config() or 'config')
            backbone, cls_head, data_preprocessor, teacher, hallu_head, \
                fusion = (args[k] for k in _SECTION_ARGS)
            if hallucination.get('bank'):  # the targets come from the store
                teacher = None
        if fusion not in FUSIONS:
            hint = (" (MoNet's two streams are type='LateFusionHalluciNet')"
                    if fusion == 'late' else '')
            raise ValueError(f'fusion must be one of {FUSIONS}, got '
                             f'{fusion!r}{hint}')
        if hallu_head is None and fusion == 'direct':
            raise ValueError("fusion='direct' needs a hallu_head")
        if hallu_head is not None and neck is not None:
            raise ValueError('HalluciNet does not support a neck together '
                             'with a hallu_head')
        if frames_per_segment < 1:
            raise ValueError('frames_per_segment must be >= 1')
        super().__init__(
            backbone=backbone,
            neck=neck,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor)
        # Built where mmaction2 builds it (every seed draws the same random
        # numbers), registered last (below): mmaction2's
        # TSMOptimWrapperConstructor takes the last Linear module for the
        # classifier (HalluciNetOptimWrapperConstructor names it).
        classifier = MODELS.build(cls_head) if cls_head is not None else None
        self.fusion = fusion
        self.frames_per_segment = frames_per_segment
        self.hallu_head = None
        if hallu_head is not None:
            self.hallu_head = MODELS.build(hallu_head)
        self.build_streams()
        self.teacher = None
        if teacher is not None:
            self.teacher = build_frozen_teacher(teacher)
            self.register_state_dict_post_hook(drop_teacher_state)
            self.register_load_state_dict_pre_hook(fill_teacher_state)
        self.cls_head = classifier
        check_channels(self)
        check_teacher_view(self)

    def build_streams(self) -> None:
        """Build what a subclass adds between the hallucination head and
        the teacher (:class:`LateFusionHalluciNet`: the second
        classifier)."""

    # ------------------------------------------------------------ forward
    def extract_student_feat(self,
                             imgs: torch.Tensor,
                             test_mode: bool = False) -> Tuple:
        """Student features, one vector per segment.

        Args:
            imgs (Tensor): ``(N, V * S * F, C, H, W)``: ``S`` segments of
                ``F`` frames each, ``V`` test views.

        Returns:
            tuple: ``(N * V * S, F * C)`` features and mmaction2's
            ``loss_predict_kwargs`` (``num_segs`` = ``V * S``).
        """
        if imgs.shape[1] % self.frames_per_segment:
            raise ValueError(
                f'{imgs.shape[1]} student frames per sample do not split '
                f'into segments of frames_per_segment='
                f'{self.frames_per_segment}')
        if self.backbone_from == 'timm':
            x, kwargs = self._timm_features(imgs, test_mode)
        else:
            x, kwargs = super().extract_feat(
                imgs, stage='backbone', test_mode=test_mode)
            # [N * V * S * F, C, ...] -> [N * V * S * F, C]
            x = reduce_to_vector(x)
        # [N * V * S * F, C] -> [N * V * S, F * C]
        x = x.reshape(-1, self.frames_per_segment * x.shape[1])
        kwargs['num_segs'] //= self.frames_per_segment
        return x, kwargs

    def _timm_features(self, imgs: torch.Tensor, test_mode: bool) -> Tuple:
        """timm's own pooled pre-logits features: its ``forward_head`` knows
        each family's pooling (NHWC Swin, token ViT, ConvNeXt's head norm,
        VGG's fc6/fc7, MobileNetV3's conv head), and uses every parameter."""
        kwargs = dict(num_segs=imgs.shape[1])
        # [N, V * S * F, C, H, W] -> [N * V * S * F, C, H, W]
        imgs = imgs.flatten(0, 1)
        chunk = len(imgs)
        if test_mode:
            kwargs['fcn_test'] = False
            chunk = (self.test_cfg or {}).get('max_testing_views') or chunk
        # No split unless asked, and none in a trace (ONNX export): the
        # tracer would freeze the split to the example's batch size. One
        # chunk computes the same.
        split = chunk < len(imgs) and not torch.jit.is_tracing()
        parts = imgs.split(chunk) if split else [imgs]
        feats = [
            self.backbone.forward_head(
                self.backbone.forward_features(part), pre_logits=True)
            for part in parts
        ]
        return torch.cat(feats), kwargs

    def teacher_target(self, inputs: Dict) -> torch.Tensor:
        """The hallucination target: feature bank or online teacher.

        Returns:
            Tensor: ``(N * S, D)``.
        """
        if 'teacher_feats' in inputs:
            # [N, S, D] -> [N * S, D]
            return inputs['teacher_feats'].flatten(0, 1)
        if 'teacher_imgs' not in inputs:
            raise KeyError('training HalluciNet needs teacher_imgs (online '
                           'teacher) or teacher_feats (feature bank) in the '
                           'inputs. A config with model.hallucination needs '
                           "custom_hooks=[dict(type='HallucinationHook')] "
                           "under mmaction2's tools; otherwise check the "
                           "pipeline's PackActionInputs collect_keys")
        if self.teacher is None:
            raise RuntimeError('no teacher configured: set model.teacher, or '
                               'train from a feature bank (teacher_feats)')
        # [N, S, C, T, H, W] -> [N * S, D]
        return self.teacher(inputs['teacher_imgs'])

    def hallucinate(self, feats: torch.Tensor, num_segs: int) -> torch.Tensor:
        """Map student features ``(N * S, F * C)`` to the teacher's space,
        ``(N * S, D)``."""
        if feats.shape[1] != self.hallu_head.in_channels:
            raise ValueError(
                f'the student gives {feats.shape[1]} features per segment '
                f'but hallu_head.in_channels={self.hallu_head.in_channels}')
        return self.hallu_head(feats, num_segs=num_segs)

    def fuse(
        self, feats: torch.Tensor, hallu: Optional[torch.Tensor]
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """What the classifier sees, see :attr:`fusion`.

        Args:
            feats (Tensor): Student features ``(N * S, F * C)``.
            hallu (Tensor, optional): Their hallucination ``(N * S, D)``.

        Returns:
            Tensor: ``(N * S, C', 1, 1)``, the layout 2D heads pool.
        """
        x = feats
        if hallu is not None and self.fusion == 'direct':
            x = hallu
        elif hallu is not None and self.fusion == 'concat':
            x = torch.cat([feats, hallu], dim=1)
        # [N * S, C'] -> [N * S, C', 1, 1]
        return x[..., None, None]

    @property
    def _is_recognizer2d(self) -> bool:
        """No hallucination, one frame per segment, no timm student:
        mmaction2's :class:`Recognizer2D` (its neck, ``fcn_test`` and
        ``max_testing_views`` included)."""
        return self.hallu_head is None and self.frames_per_segment == 1 \
            and self.backbone_from != 'timm'

    def forward_features(self,
                         imgs: torch.Tensor,
                         test_mode: bool = False) -> Tuple:
        """The classifier's input and the hallucination of student frames.

        Args:
            imgs (Tensor): Normalised student frames
                ``(N, V * S * F, C, H, W)``.
            test_mode (bool): As in :meth:`extract_feat`.

        Returns:
            tuple: The classifier's input (see :meth:`fuse`; the neck's
            output on the :class:`Recognizer2D` path), the hallucination
            ``(N * V * S, D)`` or None, and the head's kwargs (``num_segs``
            = ``V * S``).
        """
        if self._is_recognizer2d:
            x, kwargs = super().extract_feat(
                imgs, stage='neck', test_mode=test_mode)
            return x, None, kwargs
        feats, kwargs = self.extract_student_feat(imgs, test_mode)
        hallu = None
        if self.hallu_head is not None:
            hallu = self.hallucinate(feats, kwargs['num_segs'])
        return self.fuse(feats, hallu), hallu, kwargs

    def forward_head(self, x: Union[torch.Tensor, Tuple[torch.Tensor, ...]],
                     **kwargs) -> torch.Tensor:
        """Class scores of the classifier's input (:meth:`forward_features`)
        per view that the head's consensus keeps apart: ``cls_head``'s
        ``(N * V', num_classes)`` scores."""
        return self.cls_head(x, **kwargs)

    def average_views(self, scores: torch.Tensor,
                      num_views: int) -> torch.Tensor:
        """:meth:`forward_head`'s ``(N * V', num_classes)`` scores averaged
        over the views as :meth:`predict` reports them:
        ``cls_head.average_clip``."""
        return self.cls_head.average_clip(scores, num_segs=num_views)

    def extract_feat(self,
                     inputs: Union[torch.Tensor, Dict],
                     stage: str = 'neck',
                     data_samples: SampleList = None,
                     test_mode: bool = False) -> Tuple:
        """Student features, hallucination and fusion; the loss of the
        hallucination goes to ``loss_aux`` as mmaction2's necks do.

        Args:
            inputs (Tensor | dict): Student frames ``(N, S * F, C, H, W)``,
                or a dict with ``imgs`` and, in training, ``teacher_imgs``
                ``(N, S, C, T, H, W)`` or ``teacher_feats`` ``(N, S, D)``.
            stage (str): ``'backbone'`` (student features), ``'neck'``
                (fused features for the head) or ``'head'`` (scores, see
                :meth:`forward_head`).

        Returns:
            tuple: Features ``(N * S, C', 1, 1)`` and the head's kwargs.
        """
        imgs = inputs['imgs'] if isinstance(inputs, dict) else inputs
        if self._is_recognizer2d:
            return super().extract_feat(
                imgs,
                stage=stage,
                data_samples=data_samples,
                test_mode=test_mode)
        if stage == 'backbone':
            return self.extract_student_feat(imgs, test_mode)
        x, hallu, kwargs = self.forward_features(imgs, test_mode)
        kwargs['loss_aux'] = dict()
        if hallu is not None and not test_mode and data_samples is not None:
            kwargs['loss_aux'] = self._hallu_loss(inputs, hallu,
                                                  kwargs['num_segs'],
                                                  data_samples)
        if stage == 'neck':
            return x, kwargs
        return self.forward_head(x, **kwargs), kwargs

    def _hallu_loss(self, inputs: Union[torch.Tensor, Dict],
                    hallu: torch.Tensor, num_segs: int,
                    data_samples: SampleList) -> Dict:
        """The hallucination loss against :meth:`teacher_target` (and its
        unlabelled part, for the log)."""
        if not isinstance(inputs, dict):
            inputs = dict(imgs=inputs)
        target = self.teacher_target(inputs)
        if len(target) != len(hallu):
            raise ValueError(
                f'{len(target)} teacher clips for {len(hallu)} student '
                f'segments ({num_segs} per sample): teacher_imgs / '
                'teacher_feats must hold one clip per student segment '
                '(HalluSampleFrames num_segments, frames_per_segment)')
        if target.shape[-1] != hallu.shape[-1]:
            # Before any step: the check of every teacher whose clip shape
            # the model was not told.
            online = 'teacher_feats' not in inputs
            raise ValueError(
                teacher_width_error(
                    hallu.shape[-1], target.shape[-1],
                    self.teacher.layer if online else None,
                    'the teacher' if online else 'the feature bank'))
        losses = self.hallu_head.loss(hallu, target, num_segs)
        losses.update(
            unlabelled_hallu_loss(self.hallu_head, hallu, target, num_segs,
                                  data_samples))
        return losses

    # ------------------------------------------------------------ predict
    @property
    def predicts_class_scores(self) -> bool:
        """Whether the classifier predicts one class-score vector per
        sample, which :meth:`predict_scores` returns: mmaction2's heads
        (``average_clip``), not ``DiveLSTMHead`` (dive properties and a
        quality score)."""
        return self.with_cls_head and hasattr(self.cls_head, 'average_clip')

    def predict_scores(
        self,
        imgs: torch.Tensor,
        return_hallu: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Class scores of normalised student frames: the one prediction
        path, which :meth:`predict` (``tools/test.py``) and the deploy model
        (ONNX export, ``tools/inference.py``, the benchmark) call.

        Args:
            imgs (Tensor): Normalised student frames
                ``(N, V * S * F, C, H, W)``: ``V`` test views (crops) of
                ``S`` segments of ``F`` frames each.
            return_hallu (bool): Also return the hallucination.

        Returns:
            Tensor | tuple: Scores ``(N, num_classes)`` as :meth:`predict`
            reports them: ``cls_head.average_clip`` over the views
            (probabilities with ``average_clips='prob'``; mmaction2's
            ``(N, V, num_classes)`` with ``average_clips=None``), see
            :meth:`average_views`. With ``return_hallu`` also the hallucination
            ``(N, V * S, D)``.
        """
        if not self.predicts_class_scores:
            raise TypeError(
                f'{type(self.cls_head).__name__} does not predict one vector '
                'of class scores (it has no average_clip; DiveLSTMHead '
                'predicts dive properties and a quality score): the deploy '
                'path needs an mmaction2 classification head; test with '
                'predict() (tools/test.py)')
        if return_hallu and self.hallu_head is None:
            raise ValueError('return_hallu: the model has no hallu_head (a '
                             'vanilla student hallucinates nothing)')
        x, hallu, kwargs = self.forward_features(imgs, test_mode=True)
        scores = self.forward_head(x, **kwargs)
        # Rows per sample: 1 when the head's consensus averaged all
        # segments (TSN), the crops when it keeps them apart (TSM, TRN).
        scores = self.average_views(scores,
                                    scores.shape[0] // imgs.shape[0])
        if not return_hallu:
            return scores
        # [N * V * S, D] -> [N, V * S, D]
        return scores, hallu.reshape(-1, kwargs['num_segs'], hallu.shape[-1])

    def predict(self, inputs: Union[torch.Tensor, Dict],
                data_samples: SampleList, **kwargs) -> SampleList:
        """Write :meth:`predict_scores` into ``data_samples``: the class
        scores (``pred_score``) and the predicted label, as mmaction2's
        heads do. A head without class scores (``DiveLSTMHead``) writes
        its own predictions."""
        if not self.predicts_class_scores:
            return super().predict(inputs, data_samples, **kwargs)
        imgs = inputs['imgs'] if isinstance(inputs, dict) else inputs
        scores = self.predict_scores(imgs)
        if scores.dim() != 2:
            raise ValueError(
                f'cls_head.average_clips={self.cls_head.average_clips!r} '
                f'keeps {scores.shape[1]} views apart, but a prediction is '
                "one score vector per sample: use 'prob' or 'score'")
        for sample, score in zip(data_samples, scores):
            set_pred_score(sample, score)
            set_pred_label(sample, score.argmax(dim=-1, keepdim=True))
        return data_samples

    # ---------------------------------------------- labelled / unlabelled
    labelled_samples = staticmethod(labelled_samples)

    hallu_loss_first = False

    def classifier_streams(self, x) -> List[Tuple]:
        """``(log suffix, classifier, its input)`` per classified stream, in
        the order their losses are summed: ``cls_head`` on the fused
        features."""
        return [('', self.cls_head, x)]

    def loss(self, inputs, data_samples: SampleList, **kwargs) -> Dict:
        """Losses: the classification loss (and accuracy) of each
        classifier (:meth:`classifier_streams`) on the labelled samples
        only, then the hallucination loss on every sample."""
        x, kwargs = self.extract_feat(inputs, data_samples=data_samples)
        loss_aux = kwargs.pop('loss_aux', None) or {}
        labelled = labelled_samples(data_samples)
        # The order of the terms is the order of their sum (mmaction2's:
        # classifier first).
        losses = dict(loss_aux) if self.hallu_loss_first else {}
        for suffix, head, feats in self.classifier_streams(x):
            head_losses = labelled_head_loss(head, feats, data_samples,
                                            labelled, **kwargs)
            losses.update({k + suffix: v for k, v in head_losses.items()})
        losses.update(loss_aux)
        return losses
