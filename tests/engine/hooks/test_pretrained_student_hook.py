"""Stage-2 initialisation: exactly the named parts of a stage-1 checkpoint
are copied, in the right place of mmengine's Runner."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import BaseModel, BaseModule
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

from hallucinet_plugin.engine.hooks.pretrained_student_hook import (
    PretrainedStudentHook,
    load_pretrained_parts,
)


class Head(BaseModule):
    """A head whose own init_cfg would overwrite copied weights."""

    def __init__(self, fan_in=8, fan_out=3):
        super().__init__(
            init_cfg=dict(type='Constant', val=0.5, layer='Linear'))
        self.fc = nn.Linear(fan_in, fan_out)

    def forward(self, x):
        return self.fc(x)


class Toy(BaseModel):
    """backbone (with BN buffers), hallu_head, cls_head: a student's
    layout."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
        self.hallu_head = Head()
        self.cls_head = nn.Linear(8, num_classes)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = self.backbone(torch.stack(list(inputs)))
        out = self.cls_head(x).sum() + self.hallu_head(x).sum()
        if mode == 'loss':
            return dict(loss=out * 0)
        return out


def trained(seed, **kwargs):
    torch.manual_seed(seed)
    model = Toy(**kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        # Non-default BN statistics, so the buffers' copy is visible.
        model.backbone[1].running_mean.normal_()
        model.backbone[1].running_var.uniform_(0.5, 2)
        model.backbone[1].num_batches_tracked.fill_(seed + 7)
    return model


def save(model, path, prefix=''):
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save(dict(meta=dict(epoch=30), state_dict=state), str(path))
    return str(path)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_parts(model, copied_from, others_from, parts):
    for key, value in model.state_dict().items():
        source = copied_from if key.split('.')[0] + '.' in parts else \
            others_from
        assert torch.equal(value, source[key]), key


def test_copies_exactly_the_named_parts(tmp_path):
    stage1 = trained(1)
    ckpt = save(stage1, tmp_path / 'stage1.pth')
    model = trained(2)
    before = snapshot(model)
    copied = load_pretrained_parts(model, ckpt, ('backbone.', 'hallu_head.'))
    assert_parts(model, stage1.state_dict(), before,
                 {'backbone.', 'hallu_head.'})
    assert sorted(copied) == ['backbone.', 'hallu_head.']
    assert 'backbone.1.num_batches_tracked' in copied['backbone.']
    # Only the backbone this time; a different classifier size is no
    # concern, the classifier is not copied.
    model = trained(3, num_classes=5)
    before = snapshot(model)
    load_pretrained_parts(model, ckpt, 'backbone.')
    assert_parts(model, stage1.state_dict(), before, {'backbone.'})


def test_module_prefix_and_prefix_mapping(tmp_path):
    stage1 = trained(1)
    # A checkpoint of a distributed run ('module.') whose student was
    # called 'student'.
    state = {
        'module.' + k.replace('backbone.', 'student.', 1): v
        for k, v in stage1.state_dict().items()
    }
    model = trained(2)
    before = snapshot(model)
    load_pretrained_parts(model, state, {'student.': 'backbone.'})
    assert_parts(model, stage1.state_dict(), before, {'backbone.'})


def test_refuses_what_does_not_fit_and_changes_nothing(tmp_path):
    stage1 = trained(1)
    ckpt = save(stage1, tmp_path / 'stage1.pth')
    model = trained(2)
    before = snapshot(model)
    with pytest.raises(KeyError, match=r"no tensor under 'neck\.'"):
        load_pretrained_parts(model, ckpt, ('backbone.', 'neck.'))
    state = stage1.state_dict()
    del state['hallu_head.fc.bias']
    with pytest.raises(KeyError, match=r"lacks 1 of the 2 hallu_head "
                       r"tensors \(missing keys, e.g. \['hallu_head.fc.bias'"):
        load_pretrained_parts(model, state, ('backbone.', 'hallu_head.'))
    state = stage1.state_dict()
    state['backbone.2.weight'] = torch.zeros(3)
    with pytest.raises(KeyError, match=r"has 1 backbone tensors the model "
                       r"lacks \(unexpected keys, e.g. \['backbone.2.weight'"):
        load_pretrained_parts(model, state, ('backbone.', ))
    state = stage1.state_dict()
    state['hallu_head.fc.weight'] = torch.zeros(4, 8)
    with pytest.raises(ValueError, match=r'\(4, 8\) in the checkpoint'):
        load_pretrained_parts(model, state, ('backbone.', 'hallu_head.'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_pretrained_parts(model, str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match='ending with'):
        load_pretrained_parts(model, ckpt, ('backbone', ))
    # All or nothing: the backbone checked first was not written either.
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    # Non-strict: the common tensors, even with one missing.
    state = stage1.state_dict()
    del state['hallu_head.fc.bias']
    load_pretrained_parts(model, state, ('hallu_head.', ), strict=False)
    assert torch.equal(model.hallu_head.fc.weight,
                       stage1.hallu_head.fc.weight)
    assert torch.equal(model.hallu_head.fc.bias, before['hallu_head.fc.bias'])


def test_copied_parts_survive_init_weights(tmp_path):
    stage1 = trained(1)
    model = trained(2)
    load_pretrained_parts(model, stage1.state_dict(), ('hallu_head.', ))
    model.init_weights()
    # Head's init_cfg (constant 0.5) did not run over the copied weights.
    assert torch.equal(model.hallu_head.fc.weight,
                       stage1.hallu_head.fc.weight)
    fresh = trained(3)
    fresh.init_weights()
    assert torch.all(fresh.hallu_head.fc.weight == 0.5)


def test_only_a_training_run_loads_and_only_once(tmp_path):
    stage1 = trained(1)
    ckpt = save(stage1, tmp_path / 'stage1.pth')
    hook = HOOKS.build(
        dict(type='PretrainedStudentHook', checkpoint=ckpt,
             prefixes=['backbone.']))
    assert isinstance(hook, PretrainedStudentHook)
    model = trained(2)
    before = snapshot(model)
    # Runner.test / val: the optimizer wrapper is still a config.
    hook.before_run(
        SimpleNamespace(model=model, optim_wrapper=dict(), logger=None))
    assert_parts(model, before, before, set())
    optim_wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.1)))
    runner = SimpleNamespace(
        model=model, optim_wrapper=optim_wrapper, logger=None)
    hook.before_run(runner)
    assert_parts(model, stage1.state_dict(), before, {'backbone.'})
    # A second before_run (Runner.test after train) must not undo training.
    with torch.no_grad():
        model.backbone[0].weight.add_(1)
    trained_weight = model.backbone[0].weight.clone()
    hook.before_run(runner)
    assert torch.equal(model.backbone[0].weight, trained_weight)
    with pytest.raises(ValueError, match='checkpoint'):
        PretrainedStudentHook(checkpoint='')


class Points(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.full((4, ), float(i)))


class Probe(Hook):
    """Records the model's weights when training starts."""

    priority = 'LOWEST'

    def before_train(self, runner):
        self.state = snapshot(runner.model)


def run(tmp_path, name, model, hooks, load_from=None):
    probe = Probe()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / name),
        train_dataloader=dict(
            dataset=Points(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        custom_hooks=hooks + [probe],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        load_from=load_from,
        default_scope='mmaction',
        log_level='WARNING')
    runner.train()
    return probe.state


def test_in_the_runner_before_init_weights_and_load_from(tmp_path):
    stage1 = trained(1)
    ckpt = save(stage1, tmp_path / 'stage1.pth')
    hook = dict(
        type='PretrainedStudentHook',
        checkpoint=ckpt,
        prefixes=('backbone.', 'hallu_head.'))
    model = trained(2)
    before = snapshot(model)
    state = run(tmp_path, 'stage2', model, [hook])
    # Copied parts as in stage 1 when training starts, despite
    # init_weights (the head's constant init would have run); the
    # classifier is the model's own.
    assert_parts(
        SimpleNamespace(state_dict=lambda: state), stage1.state_dict(),
        before, {'backbone.', 'hallu_head.'})
    # load_from (or resume) comes after and wins.
    other = trained(5)
    state = run(
        tmp_path,
        'load_from',
        trained(2), [hook],
        load_from=save(other, tmp_path / 'other.pth'))
    assert_parts(
        SimpleNamespace(state_dict=lambda: state), other.state_dict(),
        other.state_dict(), set())
