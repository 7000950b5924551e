"""TSM's parameter groups for a model that holds a frozen teacher."""
import torch.nn as nn
from mmaction.engine.optimizers import TSMOptimWrapperConstructor
from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS


class _Trainable(nn.Module):
    """A view of a model's children without its frozen ``teacher`` and with
    its ``cls_head`` last (what TSM's constructor reads its groups from)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        for name, child in model.named_children():
            if name not in ('teacher', 'cls_head'):
                self.add_module(name, child)
        if getattr(model, 'cls_head', None) is not None:
            self.add_module('cls_head', model.cls_head)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HalluciNetOptimWrapperConstructor(TSMOptimWrapperConstructor):
    """mmaction2's :class:`TSMOptimWrapperConstructor` for HalluciNet.

    TSM's groups (first convolution, BN without weight decay, biases at
    2x, ``fc_lr5``: the classifier at 5x / 10x) over the trained part of
    the model: the frozen teacher is left out (it has no gradients, and
    a transformer teacher's LayerNorm is a module TSM's constructor
    refuses), and the classifier is ``cls_head``'s last ``Linear``,
    whatever order the model registered its modules in.

    Example:
        A TSM recipe's optimizer, in a HalluciNet config (the plugin's
        tools switch ``TSMOptimWrapperConstructor`` to it)::

            optim_wrapper = dict(
                constructor='HalluciNetOptimWrapperConstructor',
                paramwise_cfg=dict(fc_lr5=True))
    """

    def add_params(self, params, model: nn.Module, **kwargs) -> None:
        """TSM's groups of ``model`` without its ``teacher``, the
        classifier taken from ``cls_head``."""
        super().add_params(params, _Trainable(model), **kwargs)
