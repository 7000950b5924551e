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
from typing import Dict, List, Mapping, Union

import torch
import torch.nn as nn
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper

from ...utils.checkpoint import Prefixes, load_checkpoint_into, prefix_mapping


def load_pretrained_parts(model: nn.Module,
                          checkpoint: Union[str, Mapping[str,
                                                         torch.Tensor]],
                          prefixes: Prefixes = ('backbone.', ),
                          strict: bool = True) -> Dict[str, List[str]]:
    """Copy the tensors under ``prefixes`` from a checkpoint into a model.

    Every parameter and buffer of the model under a model prefix is
    overwritten, in place, by the checkpoint's tensor of the same name under
    the checkpoint prefix; nothing else in the model changes, and nothing
    at all on an error. Each copied submodule that is an mmengine
    ``BaseModule`` is marked initialised, so a later ``init_weights()``
    keeps the copied weights.

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
    return load_checkpoint_into(
        model,
        checkpoint,
        prefixes=prefixes,
        key_name='PretrainedStudentHook checkpoint',
        what='the stage-1 checkpoint: train stage 1 first, or point the '
        'checkpoint at its work_dir',
        max_missing=0 if strict else None,
        allow_unexpected=not strict)


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
        self.prefixes = prefix_mapping(prefixes)
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
        # The loader logs what it copied to the current (the runner's)
        # logger.
        load_pretrained_parts(model, self.checkpoint, self.prefixes,
                              self.strict)
        self._loaded = True
