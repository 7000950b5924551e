"""The student-only deploy path, and its export to ONNX.

At inference HalluciNet runs only its student: frames -> student backbone
-> hallucination head -> fusion -> classifier. :class:`DeployModel` wraps
that path (no teacher) as one module that takes raw pixels and returns class
scores and, optionally, the hallucinated representation; it is what
``tools/export_onnx.py`` exports, ``tools/inference.py`` runs and
``tools/benchmark.py`` times.

Deploy input and outputs
    ``imgs``: float32 pixels in ``0..255``, in the channel order the test
    pipeline decodes (RGB for decord), ``(B, F, 3, H, W)`` where ``F`` is
    the frames one prediction sees (test views x segments x frames per
    segment of the test pipeline), or ``(B, 3, H, W)`` when ``F == 1`` (the
    paper's one-frame student). Normalisation (the data preprocessor's
    ``mean``, ``std``, ``to_rgb``) is part of the model. ``B`` is dynamic
    in the ONNX file; ``F``, ``H`` and ``W`` are fixed.
    ``scores``: ``(B, num_classes)``, the classifier's ``average_clips``
    applied (``'prob'``: probabilities). ``hallu`` (``with_hallu``):
    ``(B, S, D)``, the hallucinated representation of each of the ``S``
    segments, what a device sends instead of the frames (``D`` numbers per
    segment).

ONNX files are written by PyTorch's TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``; the dynamo exporter needs
``onnxscript``, which the pinned stack does not install) and carry the
input layout in their metadata (``hallucinet.*`` keys).

Verification tolerance
    onnxruntime and PyTorch must agree to ``1e-4`` absolute on ``scores``
    (probabilities for ``average_clips='prob'``) and ``1e-3`` absolute on
    ``hallu`` (:data:`DEFAULT_ATOL`), on random inputs at batch 1 and 3 (the
    dynamic batch axis) and on frames decoded from a real video.
"""
import contextlib
import copy
import json
import logging
import os
import os.path as osp
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from ..models.recognizers.hallucinet import reduce_to_vector

PathLike = Union[str, os.PathLike]
DEFAULT_ATOL = dict(scores=1e-4, hallu=1e-3)
DEFAULT_OPSET = 17
# Samplers of 2D test pipelines -> how many frames one prediction sees.
_SAMPLERS = ('HalluSampleFrames', 'SampleFrames', 'DenseSampleFrames',
             'UniformSample', 'UniformSampleFrames')
_CROP_VIEWS = dict(ThreeCrop=3, TenCrop=10)
_METADATA_PREFIX = 'hallucinet.'


# ------------------------------------------------------------------ configs
def load_config(config: Union[PathLike, Config, Dict],
                cfg_options: Optional[Dict] = None) -> Config:
    """A config from a file, a :class:`Config` or a plain dict (copied).

    Args:
        config (str | Config | dict): The config or its path.
        cfg_options (dict, optional): ``key=value`` overrides, as
            ``--cfg-options`` of the train/test tools.

    Returns:
        Config: The config.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        cfg = Config(copy.deepcopy(config))
    else:
        config = os.fspath(config)
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        cfg = Config.fromfile(config)
    if 'model' not in cfg:
        raise KeyError(f'config {_name_of(config)} has no `model`')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _name_of(config) -> str:
    if isinstance(config, (str, os.PathLike)):
        return os.fspath(config)
    return getattr(config, 'filename', None) or '<dict>'


def without_pretrained(cfg: Dict) -> Dict:
    """A copy of a model config that downloads and loads no weights.

    ``pretrained=True`` (timm, torchvision) becomes ``False``, a
    ``pretrained`` path or URL (mmaction2 backbones) ``None``, and
    ``init_cfg`` of type ``Pretrained`` is dropped. Cost and the exported
    graph do not depend on the weights.
    """

    def strip(obj):
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                if key == 'pretrained':
                    value = False if isinstance(value, bool) else None
                elif key == 'init_cfg' and isinstance(value, dict) \
                        and value.get('type') == 'Pretrained':
                    continue
                out[key] = strip(value)
            return out
        if isinstance(obj, (list, tuple)):
            return type(obj)(strip(v) for v in obj)
        return obj

    return strip(copy.deepcopy(dict(cfg)))


def get_test_pipeline(cfg: Config) -> List[Dict]:
    """The test pipeline: ``test_dataloader.dataset.pipeline``, else the
    ``test_pipeline`` variable (derived configs override the former)."""
    loader = cfg.get('test_dataloader', None) or {}
    pipeline = (loader.get('dataset', None) or {}).get('pipeline', None)
    if pipeline is None:
        pipeline = cfg.get('test_pipeline', None)
    if pipeline is None:
        raise KeyError(f'config {_name_of(cfg)} has neither '
                       'test_dataloader.dataset.pipeline nor test_pipeline')
    return [dict(t) for t in pipeline]


def _size_of(value, key: str) -> Tuple[int, int]:
    """``(h, w)`` from an mmaction2 ``int`` or ``(w, h)`` size."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[1]), int(value[0])
    raise ValueError(f'cannot read a size from {key}={value!r}')


def student_input_spec(cfg: Config) -> Dict:
    """What one prediction of the student sees, from the test pipeline.

    Returns:
        dict: ``num_frames`` (views x segments x frames per segment),
        ``num_segments`` (segments x views, mmaction2's ``num_segs``) and
        ``size``: ``(h, w)``, or ``None`` when the pipeline keeps the
        decoded size (no fixed ``Resize`` or crop).
    """
    pipeline = get_test_pipeline(cfg)
    frames = segments = None
    views = 1
    size = None
    for t in pipeline:
        kind = t.get('type')
        if kind == 'HalluSampleFrames':
            segments = t.get('num_segments', 1)
            frames = segments * len(t.get('student_offsets', (0, )))
        elif kind in _SAMPLERS:
            segments = t.get('num_clips', 1) * (2 if t.get('twice_sample')
                                                 else 1)
            frames = segments * t.get('clip_len', 1)
        elif kind == 'Resize':
            scale = t.get('scale')
            if t.get('keep_ratio', True) or scale is None \
                    or min(_size_of(scale, 'Resize.scale')) <= 0:
                size = None
            else:
                size = _size_of(scale, 'Resize.scale')
        elif kind in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            size = _size_of(t.get('crop_size'), f'{kind}.crop_size')
            views *= _CROP_VIEWS.get(kind, 1)
    if frames is None:
        raise ValueError(
            f'cannot tell how many frames one prediction sees: the test '
            f'pipeline of {_name_of(cfg)} has none of the samplers '
            f'{_SAMPLERS}')
    return dict(
        num_frames=frames * views, num_segments=segments * views, size=size)


def teacher_input_spec(cfg: Config) -> Optional[Tuple[int, int, int]]:
    """``(T, H, W)`` of one teacher clip from the train pipeline's
    ``HalluSampleFrames.clip_len`` and ``HalluSplitViews.teacher_scale``;
    ``None`` when the pipeline does not say (also when the teacher view
    keeps the shared, possibly random, crop size: ``teacher_scale=None``).
    """
    loader = cfg.get('train_dataloader', None) or {}
    pipeline = (loader.get('dataset', None) or {}).get('pipeline', None) \
        or cfg.get('train_pipeline', None) or []
    clip_len = scale = None
    for t in pipeline:
        if t.get('type') == 'HalluSampleFrames':
            clip_len = t.get('clip_len', 16)
        elif t.get('type') == 'HalluSplitViews':
            scale = t.get('teacher_scale', (112, 112))
    if clip_len is None or scale is None:
        return None
    h, w = _size_of(scale, 'HalluSplitViews.teacher_scale')
    return clip_len, h, w


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
    if model_cfg.get('type') == 'HalluciNet':
        # The deploy path never runs the teacher.
        model_cfg.update(teacher=None, teacher_ckpt=None)
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        with quiet_logger():
            model.init_weights()
    else:
        load_student_checkpoint(model, checkpoint)
    return model.eval()


def load_student_checkpoint(model: nn.Module, checkpoint: PathLike) -> None:
    """Load a student's weights strictly (teacher keys ignored)."""
    checkpoint = os.fspath(checkpoint)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    # The plugin's safe globals make mmengine's own checkpoints loadable.
    import hallucinet_plugin  # noqa: F401
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ValueError(f'{checkpoint}: not a checkpoint with a state dict')
    state = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state.items() if not k.startswith(('teacher.',
                                                       'module.teacher.'))
    }
    own = model.state_dict()
    mismatched = [
        f'{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the '
        'model' for k, v in state.items()
        if k in own and tuple(own[k].shape) != tuple(v.shape)
    ]
    if mismatched:
        raise ValueError(
            f'checkpoint {checkpoint} does not fit the model of the config: '
            f'{len(mismatched)} tensors of other shapes (e.g. '
            f'{mismatched[:3]})')
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KeyError(
            f'checkpoint {checkpoint} does not fit the model of the config: '
            f'{len(missing)} missing keys (e.g. {missing[:5]}), '
            f'{len(unexpected)} unexpected keys (e.g. {unexpected[:5]})')


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

    Runs the recognizer's own steps (``extract_student_feat`` ->
    ``hallucinate`` -> ``fuse`` -> ``cls_head`` -> ``average_clip``) after
    the data preprocessor's normalisation; see the module docstring for the
    input and outputs.

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
        if not hasattr(model, 'extract_student_feat'):
            raise TypeError(f'{type(model).__name__} is not a HalluciNet '
                            'recognizer')
        if model.with_neck:
            raise ValueError('the deploy path does not support a neck')
        hallu_head = getattr(model, 'hallu_head', None)
        if with_hallu and hallu_head is None:
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

    def student_feat(self, imgs: torch.Tensor) -> Tuple[torch.Tensor, Dict]:
        """Student features ``(B * S, F_seg * C)`` and the head's kwargs."""
        model = self.model
        if model.backbone_from == 'timm' and torch.jit.is_tracing():
            # HalluciNet._timm_features splits the batch into
            # max_testing_views chunks; the tracer would freeze that split
            # to the example's batch size. Same computation, one chunk.
            # [B, F, 3, H, W] -> [B * F, 3, H, W]
            x = imgs.flatten(0, 1)
            x = model.backbone.forward_head(
                model.backbone.forward_features(x), pre_logits=True)
            # [B * F, C] -> [B * S, F_seg * C]
            x = x.reshape(-1, model.frames_per_segment * x.shape[1])
            return x, dict(num_segs=self.num_segments, fcn_test=False)
        return model.extract_student_feat(imgs, test_mode=True)

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
        model = self.model
        feats, kwargs = self.student_feat(imgs)
        hallu = None
        if model.hallu_head is not None:
            hallu = model.hallucinate(feats, kwargs['num_segs'])
        # [B * S, C'] -> [B * S, C', 1, 1], the layout 2D heads pool.
        scores = model.cls_head(model.fuse(feats, hallu)[..., None, None],
                                **kwargs)
        if hasattr(model.cls_head, 'average_clip'):
            scores = model.cls_head.average_clip(scores, num_segs=1)
        # average_clips=None keeps a view axis: [B, 1, K] -> [B, K]
        scores = scores.reshape(imgs.shape[0], -1)
        if not self.with_hallu:
            return scores
        # [B * S, D] -> [B, S, D]
        return scores, hallu.reshape(imgs.shape[0], -1, hallu.shape[-1])


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


def resolve_size(cfg: Config,
                 size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """``(h, w)`` of the student frames: ``size`` (one or two ints) when
    given, else the test pipeline's fixed size."""
    if size is not None:
        size = [int(s) for s in size]
        if len(size) not in (1, 2) or min(size) <= 0:
            raise ValueError(f'a size is one or two positive ints (H W), '
                             f'got {size}')
        return (size[0], size[-1])
    spec_size = student_input_spec(cfg)['size']
    if spec_size is None:
        raise ValueError(
            f'the test pipeline of {_name_of(cfg)} keeps the decoded frame '
            'size (no fixed Resize or crop): give the student size '
            'explicitly (--student-size H [W])')
    return spec_size


def input_shape(deploy: DeployModel, size: Tuple[int, int]) -> Tuple:
    """Per-sample input shape of a deploy model: ``(F, 3, H, W)``, or
    ``(3, H, W)`` when ``F == 1``."""
    if deploy.num_frames == 1:
        return (3, *size)
    return (deploy.num_frames, 3, *size)


# ------------------------------------------------------------------- ONNX
def export_module(module: nn.Module,
                  example: torch.Tensor,
                  out_file: PathLike,
                  output_names: Sequence[str] = ('scores', ),
                  opset: int = DEFAULT_OPSET,
                  metadata: Optional[Dict[str, str]] = None) -> str:
    """Export ``module(example)`` to ONNX with a dynamic batch axis.

    Args:
        module (nn.Module): In eval mode.
        example (Tensor): An input ``(B, ...)``; every axis but the first
            is fixed in the file.
        out_file (str): The ``.onnx`` file.
        output_names (Sequence[str]): One name per output.
        opset (int): ONNX opset.
        metadata (dict, optional): ``metadata_props`` to store.

    Returns:
        str: ``out_file``.
    """
    import onnx

    out_file = os.fspath(out_file)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    dynamic = {name: {0: 'batch'} for name in ['imgs', *output_names]}
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # Shape checks in Python are constants of the trace, as intended:
        # only the batch axis is dynamic.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            module, (example, ),
            out_file,
            input_names=['imgs'],
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False)
    if metadata:
        proto = onnx.load(out_file, load_external_data=False)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.save(proto, out_file)
    onnx.checker.check_model(out_file)
    return out_file


def deploy_metadata(deploy: DeployModel, size: Tuple[int, int],
                    num_classes: int) -> Dict[str, str]:
    """The input layout stored in an exported file (``hallucinet.*``)."""
    layout = 'B,3,H,W' if deploy.num_frames == 1 else 'B,F,3,H,W'
    meta = dict(
        num_frames=deploy.num_frames,
        num_segments=deploy.num_segments,
        height=size[0],
        width=size[1],
        layout=layout,
        pixels='float32 0..255, channel order of the test pipeline',
        num_classes=num_classes,
        outputs=json.dumps(['scores', 'hallu'] if deploy.with_hallu else
                           ['scores']))
    return {_METADATA_PREFIX + k: str(v) for k, v in meta.items()}


def export_onnx(cfg: Config,
                checkpoint: Optional[PathLike],
                out_file: PathLike,
                with_hallu: bool = False,
                size: Optional[Sequence[int]] = None,
                opset: int = DEFAULT_OPSET) -> Tuple[DeployModel, str]:
    """Export a config's deploy path (``tools/export_onnx.py``).

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): Student checkpoint; ``None`` or
            ``'none'``: random weights.
        out_file (str): The ``.onnx`` file.
        with_hallu (bool): Second output ``hallu``, ``(B, S, D)``.
        size (Sequence[int], optional): ``(H, W)`` of the frames when the
            test pipeline does not fix it.
        opset (int): ONNX opset.

    Returns:
        tuple: The exported :class:`DeployModel` and the file.
    """
    if checkpoint is not None and os.fspath(checkpoint).lower() == 'none':
        checkpoint = None
    deploy = build_deploy_model(cfg, checkpoint, with_hallu)
    hw = resolve_size(cfg, size)
    example = torch.rand(1, *input_shape(deploy, hw)) * 255
    with torch.no_grad():
        num_classes = _first(deploy(example)).shape[1]
    names = ('scores', 'hallu') if with_hallu else ('scores', )
    export_module(deploy, example, out_file, names, opset,
                  deploy_metadata(deploy, hw, num_classes))
    return deploy, os.fspath(out_file)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def onnx_session(onnx_file: PathLike,
                 device: str = 'cpu',
                 threads: Optional[int] = None):
    """An onnxruntime session on ``device`` with ``threads`` intra-op
    threads (default: as many as PyTorch uses, for a fair comparison)."""
    import onnxruntime as ort

    onnx_file = os.fspath(onnx_file)
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    if device == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise RuntimeError('onnxruntime has no CUDAExecutionProvider '
                               '(install onnxruntime-gpu) for --device cuda')
        providers = ['CUDAExecutionProvider']
    else:
        providers = ['CPUExecutionProvider']
    return ort.InferenceSession(
        onnx_file, sess_options=options, providers=providers)


def onnx_metadata(session) -> Dict[str, str]:
    """The ``hallucinet.*`` metadata of a session's model."""
    props = session.get_modelmeta().custom_metadata_map
    return {
        k[len(_METADATA_PREFIX):]: v
        for k, v in props.items() if k.startswith(_METADATA_PREFIX)
    }


def compare_onnx(deploy: nn.Module,
                 session,
                 inputs: Dict[str, np.ndarray],
                 atol: Optional[Dict[str, float]] = None) -> Dict:
    """Run PyTorch and onnxruntime on the same inputs; raise on mismatch.

    Args:
        deploy (nn.Module): The PyTorch module that was exported.
        session: Its onnxruntime session.
        inputs (dict): name -> float32 pixels ``(B, ...)``.
        atol (dict, optional): Absolute tolerance per output name
            (:data:`DEFAULT_ATOL`).

    Returns:
        dict: name -> ``{output: max abs diff}`` and ``shapes``.

    Raises:
        AssertionError: An output differs by more than its tolerance; the
            message names the input, the output and the max abs diff.
    """
    atol = {**DEFAULT_ATOL, **(atol or {})}
    names = [o.name for o in session.get_outputs()]
    report = {}
    failures = []
    for name, pixels in inputs.items():
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        got = session.run(None, {'imgs': pixels})
        with torch.no_grad():
            ref = deploy(torch.from_numpy(pixels))
        ref = ref if isinstance(ref, (tuple, list)) else (ref, )
        diffs = {}
        for out_name, a, b in zip(names, got, ref):
            b = b.cpu().numpy()
            if a.shape != b.shape:
                raise AssertionError(
                    f'{name}: onnxruntime output {out_name} has shape '
                    f'{a.shape}, PyTorch {b.shape}')
            diffs[out_name] = float(np.abs(a - b).max())
            if diffs[out_name] > atol.get(out_name, DEFAULT_ATOL['hallu']):
                failures.append(
                    f'{name}: {out_name} max abs diff {diffs[out_name]:.3g} '
                    f'> tolerance {atol.get(out_name)}')
        report[name] = dict(diffs, shape=list(pixels.shape))
    if failures:
        raise AssertionError('onnxruntime and PyTorch disagree: ' +
                             '; '.join(failures))
    return report


def verify_onnx(deploy: DeployModel,
                onnx_file: PathLike,
                frames: Optional[np.ndarray] = None,
                atol: Optional[Dict[str, float]] = None,
                seed: int = 0,
                session=None) -> Dict:
    """Check an exported deploy model against PyTorch (``--verify``).

    Random pixels at batch 1 and 3 (the dynamic batch axis) and, when
    given, real decoded ``frames`` (one sample: ``(F, 3, H, W)`` or
    ``(3, H, W)``).

    Args:
        session (optional): An onnxruntime session of ``onnx_file``
            already open.

    Returns:
        dict: See :func:`compare_onnx`.
    """
    session = session or onnx_session(onnx_file)
    shape = session.get_inputs()[0].shape[1:]
    if not all(isinstance(s, int) for s in shape):
        raise ValueError(f'{onnx_file}: only the batch axis may be dynamic, '
                         f'input shape {session.get_inputs()[0].shape}')
    rng = np.random.default_rng(seed)
    inputs = {
        f'random batch {b}': rng.uniform(0, 255, (b, *shape))
        for b in (1, 3)
    }
    if frames is not None:
        frames = np.asarray(frames, dtype=np.float32)
        if tuple(frames.shape) != tuple(shape):
            raise ValueError(
                f'decoded frames {tuple(frames.shape)} do not fit the '
                f'exported input {tuple(shape)} (another size or frame '
                'count: pass --student-size, or a video of that size)')
        inputs['decoded frames'] = frames[None]
    return compare_onnx(deploy, session, inputs, atol)


def write_test_video(path: PathLike,
                     size: Tuple[int, int],
                     num_frames: int = 32,
                     fps: int = 25) -> str:
    """A small real mp4 (moving colour gradient), ``size`` = ``(h, w)``,
    for checking an export on decoded frames when no video is at hand."""
    import cv2

    path = os.fspath(path)
    h, w = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cannot open a video writer for {path}')
    ys, xs = np.mgrid[0:h, 0:w]
    for t in range(num_frames):
        frame = np.stack([(xs * 255 // max(w - 1, 1) + 8 * t) % 256,
                          (ys * 255 // max(h - 1, 1)) % 256,
                          np.full_like(xs, (16 * t) % 256)], axis=-1)
        writer.write(frame.astype(np.uint8))
    writer.release()
    return path


def verify_export(cfg: Config,
                  deploy: DeployModel,
                  onnx_file: PathLike,
                  video: Optional[PathLike] = None,
                  atol: Optional[Dict[str, float]] = None) -> Dict:
    """:func:`verify_onnx` with frames of ``video`` decoded by the test
    pipeline; without ``video``, of a generated one at the exported
    size."""
    from .inference import load_frames

    session = onnx_session(onnx_file)
    shape = session.get_inputs()[0].shape[1:]
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            size = tuple(shape[-2:])
            if student_input_spec(cfg)['size'] is not None:
                # decord pads frame rows to 32 pixels and then fails on a
                # size mismatch; the pipeline resizes/crops anyway.
                size = tuple(-(-s // 32) * 32 for s in size)
            video = write_test_video(osp.join(tmp, 'check.mp4'), size)
        frames = load_frames(cfg, video)
    if len(shape) == 3:
        # [1, 3, H, W] -> [3, H, W], the one-frame layout
        frames = frames[0]
    return verify_onnx(deploy, onnx_file, frames, atol, session=session)
