"""Initialise parts of a model (the student) from another model's checkpoint.

HalluciNet's two-stage recipe (the paper's Table 9, "hallucination in
pre-training"): stage 1 trains a student on an action-recognition dataset,
with or without hallucination; stage 2 starts the dive / AQA model's student
backbone, and optionally its hallucination head, from that checkpoint, while
the new task's head (LSTM, classifiers, regressor) starts afresh. The two
models share the layout of the copied parts (same ``backbone`` and
``hallu_head`` configs), so keys map one to one under their prefixes.

mmengine's ``load_from`` would load every key whose name happens to match and
skip the rest with a warning; ``init_cfg=dict(type='Pretrained', prefix=...)``
needs an ``init_cfg`` on the receiving module, which timm backbones and
HalluciNet itself do not take. :class:`PretrainedStudentHook` copies exactly
the named parts and fails loudly on any missing, unexpected or mis-shaped
tensor.
"""
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper
from mmengine.runner.checkpoint import _load_checkpoint

Prefixes = Union[str, Sequence[str], Mapping[str, str]]


def _prefix_map(prefixes: Prefixes) -> Dict[str, str]:
    """``{checkpoint prefix: model prefix}`` from the accepted forms."""
    if isinstance(prefixes, str):
        prefixes = (prefixes, )
    if isinstance(prefixes, Mapping):
        mapping = dict(prefixes)
    else:
        mapping = {p: p for p in prefixes}
    if not mapping:
        raise ValueError('prefixes is empty: name the parts to copy, e.g. '
                         "('backbone.', 'hallu_head.')")
    for src, dst in mapping.items():
        for prefix in (src, dst):
            if not isinstance(prefix, str) or not prefix.endswith('.'):
                raise ValueError(
                    f'prefix {prefix!r} must be a string ending with "." '
                    "(a submodule's name, e.g. 'backbone.')")
    return mapping


def load_state_dict_file(filename: str) -> Dict[str, torch.Tensor]:
    """The state dict of a checkpoint file (mmengine's or a bare one),
    ``module.`` prefixes of distributed wrappers removed."""
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'pre-trained checkpoint not found: {filename} (train stage 1 '
            'first, or point the checkpoint at its work_dir)')
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state, Mapping):
        raise ValueError(f'{filename}: not a checkpoint with a state dict')
    return _strip_module(state)


def _strip_module(state: Mapping[str, torch.Tensor]) -> Dict:
    return {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state.items()
    }


def load_pretrained_parts(model: nn.Module,
                          checkpoint: Union[str, Mapping[str,
                                                         torch.Tensor]],
                          prefixes: Prefixes = ('backbone.', ),
                          strict: bool = True) -> Dict[str, List[str]]:
    """Copy the tensors under ``prefixes`` from a checkpoint into a model.

    Every parameter and buffer of the model under a model prefix is
    overwritten, in place, by the checkpoint's tensor of the same name under
    the checkpoint prefix; nothing else in the model changes. Each copied
    submodule that is an mmengine ``BaseModule`` is marked initialised, so a
    later ``init_weights()`` keeps the copied weights.

    Args:
        model (nn.Module): The receiving model (not wrapped).
        checkpoint (str | Mapping[str, Tensor]): A checkpoint file (its
            ``state_dict``) or a state dict; ``module.`` prefixes of
            distributed wrappers are ignored.
        prefixes (str | Sequence[str] | Mapping[str, str]): Submodule
            prefixes, ending with ``.``, present under the same names in
            both (``('backbone.', 'hallu_head.')``), or a mapping
            ``{checkpoint prefix: model prefix}`` for parts that moved.
        strict (bool): Refuse model tensors missing from the checkpoint and
            checkpoint tensors the model lacks under a prefix. Tensors of
            other shapes are always refused.

    Returns:
        dict[str, list[str]]: Per model prefix, the model keys copied.

    Raises:
        KeyError: A prefix holds no tensor in the checkpoint or the model,
            or (``strict``) the two hold different names.
        ValueError: Tensors of the same name differ in shape.
    """
    mapping = _prefix_map(prefixes)
    where = checkpoint if isinstance(checkpoint, str) else 'the state dict'
    if isinstance(checkpoint, str):
        checkpoint = load_state_dict_file(checkpoint)
    else:
        checkpoint = _strip_module(checkpoint)
    own = model.state_dict()
    copied = dict()
    plan = []
    for src, dst in mapping.items():
        source = {
            k[len(src):]: v
            for k, v in checkpoint.items() if k.startswith(src)
        }
        target = {k[len(dst):]: k for k in own if k.startswith(dst)}
        if not source:
            tops = sorted({k.split('.')[0] + '.' for k in checkpoint})
            raise KeyError(f'{where} has no tensor under {src!r} (it has '
                           f'{tops})')
        if not target:
            raise KeyError(f'the model has no tensor under {dst!r}; is the '
                           'part configured (e.g. hallu_head)?')
        missing = sorted(set(target) - set(source))
        unexpected = sorted(set(source) - set(target))
        if strict and (missing or unexpected):
            raise KeyError(
                f'{where} and the model differ under {src!r} -> {dst!r}: '
                f'{len(missing)} model tensors missing from the checkpoint '
                f'(e.g. {missing[:5]}), {len(unexpected)} checkpoint tensors '
                f'the model lacks (e.g. {unexpected[:5]}); is it the same '
                'architecture? (strict=False copies the common ones)')
        mismatched = [
            f'{dst}{name}: {tuple(source[name].shape)} in the checkpoint, '
            f'{tuple(own[key].shape)} in the model'
            for name, key in target.items()
            if name in source and source[name].shape != own[key].shape
        ]
        if mismatched:
            raise ValueError(
                f'{where} does not fit the model under {dst!r}: '
                f'{len(mismatched)} tensors of other shapes (e.g. '
                f'{mismatched[:3]})')
        plan.append((dst, [(key, source[name])
                           for name, key in target.items()
                           if name in source]))
    # Checked everything before touching the model: all or nothing.
    with torch.no_grad():
        for dst, pairs in plan:
            for key, value in pairs:
                # state_dict() tensors share storage with the model's.
                own[key].copy_(value)
            copied[dst] = [key for key, _ in pairs]
            module = model.get_submodule(dst[:-1])
            if hasattr(module, '_is_init'):
                module._is_init = True
    return copied


@HOOKS.register_module()
class PretrainedStudentHook(Hook):
    """Start training from a pre-trained student: copy the named parts of a
    checkpoint into the model before training.

    Loads in ``before_run``, which mmengine's ``Runner.train`` calls before
    ``init_weights()`` (the copied ``BaseModule`` parts are marked
    initialised, so it keeps them) and before ``load_from`` / ``--resume``
    (which therefore win: a resumed run continues from its own
    checkpoint). Only a training run loads, and only once; ``Runner.test``
    / ``val`` leave the model to ``load_from``.

    Example::

        custom_hooks = [
            dict(type='PretrainedStudentHook',
                 checkpoint='work_dirs/stage1/epoch_30.pth',
                 prefixes=('backbone.', 'hallu_head.'))
        ]

    Args:
        checkpoint (str): The stage-1 checkpoint.
        prefixes (str | Sequence[str] | Mapping[str, str]): The parts to
            copy, see :func:`load_pretrained_parts`.
        strict (bool): See :func:`load_pretrained_parts`.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 checkpoint: str,
                 prefixes: Prefixes = ('backbone.', ),
                 strict: bool = True) -> None:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError('PretrainedStudentHook needs checkpoint, the '
                             'path of the stage-1 checkpoint')
        self.checkpoint = checkpoint
        self.prefixes = _prefix_map(prefixes)
        self.strict = strict
        self._loaded = False

    def before_run(self, runner) -> None:
        # Runner.train builds its optimizer wrapper before before_run;
        # Runner.test / val do not.
        training = isinstance(runner.optim_wrapper, BaseOptimWrapper)
        if self._loaded or not training:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        copied = load_pretrained_parts(model, self.checkpoint, self.prefixes,
                                       self.strict)
        self._loaded = True
        logger: Optional[MMLogger] = getattr(runner, 'logger', None)
        if logger is not None:
            counts = ', '.join(f'{prefix} ({len(keys)} tensors)'
                               for prefix, keys in copied.items())
            logger.info(f'PretrainedStudentHook: copied {counts} from '
                        f'{self.checkpoint}')
