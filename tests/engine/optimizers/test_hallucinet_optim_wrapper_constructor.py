"""TSM's parameter groups for HalluciNet: the classifier boosted (fc_lr5),
the frozen teacher left out, whatever teacher it is."""
import pytest
import torch
from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from tests.models.recognizers.recognizer_utils import build, hallucinet_cfg

init_default_scope('mmaction')


def groups(model, constructor='HalluciNetOptimWrapperConstructor'):
    wrapper = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type=constructor,
            optim_wrapper_cfg=dict(
                type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.01, weight_decay=1e-4)),
            paramwise_cfg=dict(fc_lr5=True)))(model)
    names = {id(p): n for n, p in model.named_parameters()}
    return [(g['lr'], {names[id(p)] for p in g['params']})
            for g in wrapper.optimizer.param_groups]


def test_classifier_boosted_teacher_left_out():
    model = build(hallucinet_cfg())
    found = groups(model)
    lr5 = [names for lr, names in found if abs(lr - 0.05) < 1e-9]
    assert lr5 == [{'cls_head.fc_cls.weight'}]
    grouped = set().union(*(names for _, names in found))
    trainable = {n for n, p in model.named_parameters()
                 if not n.startswith('teacher.')}
    assert grouped == trainable
    # mmaction2's own constructor takes the last Linear: the classifier
    # too (HalluciNet registers it last), but it also groups the teacher.
    stock = set().union(*(n for _, n in groups(model,
                                               'TSMOptimWrapperConstructor')))
    assert any(n.startswith('teacher.') for n in stock)


def test_transformer_teacher():
    """TSM's constructor refuses LayerNorm; the frozen teacher's does not
    reach it."""
    model = build(hallucinet_cfg(teacher='timesformer'))
    assert any(isinstance(m, torch.nn.LayerNorm)
               for m in model.teacher.modules())
    lr5 = [n for lr, n in groups(model) if abs(lr - 0.05) < 1e-9]
    assert lr5 == [{'cls_head.fc_cls.weight'}]
    with pytest.raises(ValueError, match='New atomic module type'):
        groups(model, 'TSMOptimWrapperConstructor')
