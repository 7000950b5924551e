import copy
import inspect
import logging
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from torch.func import functional_call

from ...utils.checkpoint import load_checkpoint_into
from ...utils.typing_utils import ConfigType
from ..utils import reduce_to_vector

# The teacher's parts under these prefixes may be missing from its checkpoint
# or hold other shapes (a classifier for other classes): the hallucinated
# representation comes from the backbone (or a neck), never from them.
_UNUSED_TEACHER_PREFIXES = ('cls_head.', 'data_preprocessor.')


def build_teacher(teacher: Union[str, ConfigType]) -> nn.Module:
    """Build a 3D teacher from a config dict or a config file's ``model``.

    Args:
        teacher (str | dict): A config dict of an mmaction2 model (a 3D
            recognizer or a bare 3D backbone) or the path of a config file
            whose ``model`` is used.

    Returns:
        nn.Module: The teacher.
    """
    if isinstance(teacher, str):
        if not osp.isfile(teacher):
            raise FileNotFoundError(f'teacher config not found: {teacher}')
        teacher = Config.fromfile(teacher)['model']
    teacher = copy.deepcopy(dict(teacher))
    # A recognizer's own data preprocessor is not used: the teacher view is
    # normalised by HalluciNetDataPreprocessor (its values are kept, for
    # HalluciNet's check of that view).
    own = teacher.pop('data_preprocessor', None)
    kind = teacher.get('type')
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    param = inspect.signature(cls).parameters.get('data_preprocessor') \
        if isinstance(cls, type) else None
    if param is not None and param.default is inspect.Parameter.empty:
        # RecognizerOmni requires one: a plain one, never used.
        teacher['data_preprocessor'] = dict(type='ActionDataPreprocessor')
    # mmaction2's recognizers build their default preprocessor through
    # mmengine's registry, which needs the scope outside a Runner.
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(teacher)
    model.declared_norm = {
        k: list(own[k])
        for k in ('mean', 'std') if own and own.get(k) is not None
    }
    return model


def teacher_features(model: nn.Module,
                     clips: torch.Tensor,
                     layer: Optional[str] = None,
                     pool: str = 'avg') -> torch.Tensor:
    """What a teacher's ``layer`` (default: its backbone output) gives
    for ``clips``, reduced to one vector per clip.

    Args:
        model (nn.Module): A 3D recognizer (``extract_feat``) or a bare 3D
            backbone.
        clips (Tensor): ``(N, S, C, T, H, W)``, one clip per segment.
        layer (str, optional): A submodule name, as in ``named_modules()``;
            a name under ``neck.`` runs the recognizer up to its neck.
        pool (str): ``'avg'`` or ``'max'``.

    Returns:
        Tensor: ``(N * S, D)``.
    """
    captured = []
    handle = None
    if layer is not None:
        modules = dict(model.named_modules())
        if layer not in modules:
            raise KeyError(f'teacher layer {layer!r} is not a submodule of '
                           'the teacher')
        handle = modules[layer].register_forward_hook(
            lambda module, args, out: captured.append(out))
    try:
        if hasattr(model, 'extract_feat'):
            stage = 'neck' if layer and layer.startswith('neck') else \
                'backbone'
            out = model.extract_feat(clips, stage=stage)
            # (features, kwargs) from mmaction2's recognizers; features
            # alone from RecognizerOmni (OmniSource).
            if isinstance(out, tuple) and len(out) == 2 \
                    and isinstance(out[1], dict):
                out = out[0]
        else:
            # [N, S, C, T, H, W] -> [N * S, C, T, H, W]
            out = model(clips.flatten(0, 1))
    finally:
        if handle is not None:
            handle.remove()
    if layer is not None and not captured:
        raise RuntimeError(f'teacher layer {layer!r} did not run on the '
                           "way to the teacher's backbone output")
    return reduce_to_vector(captured[0] if captured else out, pool)


def _meta_clip(model: nn.Module, clip_shape: Sequence[int]) -> torch.Tensor:
    """A ``(1, 1, C, T, H, W)`` clip on the meta device, C read from the
    teacher's first convolution (2 for a flow teacher)."""
    convs = (m for m in model.modules()
             if isinstance(m, (nn.Conv3d, nn.Conv2d)))
    first = next(convs, None)
    channels = first.in_channels if first is not None else 3
    return torch.empty(1, 1, channels, *clip_shape, device='meta')


def build_teacher_for_shapes(model: ConfigType) -> nn.Module:
    """The teacher of ``model`` (see :func:`build_teacher`) on the meta
    device, for shape inference: built there when it can be (no memory,
    no random numbers), else on the CPU without drawing from the global
    random generator, then moved."""
    try:
        with torch.device('meta'):
            built = build_teacher(model)
    except RuntimeError:
        # Transformers compute drop-path rates with Tensor.item() when they
        # are built, which the meta device cannot.
        with torch.random.fork_rng(devices=[]):
            built = build_teacher(model).to('meta')
    # As FrozenTeacher runs it (BatchNorm would refuse one-value batches).
    return built.eval()


def inferred_width(model: nn.Module,
                   clip_shape: Sequence[int],
                   layer: Optional[str] = None,
                   pool: str = 'avg') -> int:
    """``D`` of :func:`teacher_features` for clips of ``clip_shape``
    ``(T, H, W)``, ``model`` being on the meta device."""
    with torch.no_grad():
        out = teacher_features(model, _meta_clip(model, clip_shape), layer,
                               pool)
    return int(out.shape[-1])


# A BaseModule: without a checkpoint, the Runner's ``init_weights`` still
# initialises the teacher (tests, smoke runs) as it does a bare mmaction2
# model, drawing the same random numbers.
@MODELS.register_module()
class FrozenTeacher(BaseModule):
    """A frozen 3D teacher and the representation it is hallucinated from.

    Builds the teacher, loads its checkpoint, freezes it (no gradients;
    BatchNorm and dropout stay in eval mode whatever ``train()`` says) and
    reduces the output of ``layer`` to one vector per clip. The online
    target of :class:`HalluciNet` and the feature bank's extraction both
    call this module, so the two cannot differ.

    Args:
        model (str | dict): An mmaction2 3D recognizer or bare 3D backbone
            config, or a config file path whose ``model`` is used.
        checkpoint (str, optional): The teacher's checkpoint.
        layer (str, optional): Name of a submodule (as in
            ``named_modules()``, e.g. ``'backbone.layer3'``) whose output is
            hallucinated; default: what the backbone returns.
        pool (str): ``'avg'`` or ``'max'`` reduction to one vector per clip.
        max_missing_keys (int): Checkpoint keys (outside the teacher's
            classifier) allowed to be missing before loading fails.
        in_checkpoint (bool): Write the teacher's weights into the
            checkpoints of the model that holds it. By default they are
            left out and come from ``checkpoint`` when the model is built.
        clip_shape (Sequence[int], optional): ``(T, H, W)`` of the clips
            the teacher is given (the train pipeline's ``HalluSampleFrames``
            clip length and ``HalluSplitViews`` teacher scale). When set,
            the model holding the teacher checks its target width when it
            is built (shape inference, :meth:`output_width`); the first
            batch checks it in any case.

    Example:
        The teacher of a HalluciNet config (``model.teacher``), built with
        ``MODELS.build``::

            teacher=dict(
                type='FrozenTeacher',
                model='configs/_base_/models/r3d-tiny_teacher.py',
                checkpoint='work_dirs/teacher/epoch_20.pth',
                layer='backbone.layer3',  # optional
                pool='avg')
    """

    def __init__(self,
                 model: Union[str, ConfigType],
                 checkpoint: Optional[str] = None,
                 layer: Optional[str] = None,
                 pool: str = 'avg',
                 max_missing_keys: int = 0,
                 in_checkpoint: bool = False,
                 clip_shape: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if pool not in ('avg', 'max'):
            raise ValueError(f"teacher pool must be 'avg' or 'max', got "
                             f'{pool!r}')
        self.model = build_teacher(model)
        self.layer = layer
        self.pool = pool
        self.in_checkpoint = in_checkpoint
        self.clip_shape = tuple(clip_shape) if clip_shape else None
        if checkpoint is not None:
            self.load(checkpoint, max_missing_keys)
        else:
            print_log(
                'FrozenTeacher: no teacher checkpoint (teacher.checkpoint is '
                'None), so the hallucination targets are the features of '
                'an untrained network: meaningless except in smoke tests',
                logger='current',
                level=logging.WARNING)
        for param in self.model.parameters():
            param.requires_grad = False
        self.model.eval()

    def load(self, filename: str, max_missing: int = 0) -> None:
        """Load the teacher's weights and mark it initialised.

        Args:
            filename (str): A checkpoint path or URL (the ``checkpoint``
                of ``model.teacher``).
            max_missing (int): Missing keys allowed outside the teacher's
                classifier.
        """
        try:
            load_checkpoint_into(
                self.model,
                filename,
                key_name='teacher.checkpoint',
                what="the trained teacher's checkpoint",
                optional=_UNUSED_TEACHER_PREFIXES,
                max_missing=max_missing,
                allow_unexpected=True)
        except ValueError as err:
            raise ValueError(
                f'{err}. A teacher adapted in its config (a '
                'model.hallucination.teacher_cfg_options such as img_size, '
                'num_frames or depth) needs a checkpoint trained with the '
                'same settings') from err

    def output_width(self,
                     clip_shape: Optional[Sequence[int]] = None) -> int:
        """The width of :meth:`forward`'s output for clips of
        ``clip_shape`` (default: the configured one), by shape inference
        on the meta device: the teacher does not run.

        Raises:
            ValueError: No clip shape is known.
            RuntimeError: The teacher does not take such clips (a
                transformer's fixed clip length or resolution).
        """
        clip_shape = clip_shape or self.clip_shape
        if clip_shape is None:
            raise ValueError('FrozenTeacher.output_width needs a clip shape '
                             '(T, H, W): teacher.clip_shape is not set')
        state = {
            name: torch.empty_like(value, device='meta')
            for name, value in self.state_dict(keep_vars=True).items()
        }
        with torch.no_grad():
            out = functional_call(self, state,
                                  (_meta_clip(self.model, clip_shape), ))
        return int(out.shape[-1])

    def train(self, mode: bool = True) -> 'FrozenTeacher':
        """Whatever ``mode``, the teacher stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """The teacher's representation of each clip.

        Args:
            clips (Tensor): ``(N, S, C, T, H, W)``, one clip per segment.

        Returns:
            Tensor: ``(N * S, D)``.
        """
        return teacher_features(self.model, clips, self.layer, self.pool)

def drop_teacher_state(module: nn.Module, state_dict: Dict, prefix: str,
                       local_metadata: Dict) -> None:
    """State-dict post-hook of a recognizer holding a ``teacher``: leave
    the frozen teacher out of its checkpoints (unless the teacher's
    ``in_checkpoint``)."""
    if module.teacher.in_checkpoint:
        return
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def fill_teacher_state(module: nn.Module, state_dict: Dict, prefix: str,
                       *args) -> None:
    """Load pre-hook: a checkpoint without the teacher keeps the teacher
    loaded from its own ``checkpoint`` instead of reporting its keys
    missing."""
    teacher_prefix = prefix + 'teacher.'
    if any(k.startswith(teacher_prefix) for k in state_dict):
        return
    for key, value in module.teacher.state_dict().items():
        state_dict[teacher_prefix + key] = value
