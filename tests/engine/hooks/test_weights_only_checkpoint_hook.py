"""A real Runner writes, resumes and tests from checkpoints that plain
``torch.load(weights_only=True)`` reads, with WeightsOnlyCheckpointHook."""
import itertools
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner import checkpoint as mmengine_checkpoint

from hallucinet_plugin.engine.hooks.weights_only_checkpoint_hook import (
    WeightsOnlyCheckpointHook,
)
from hallucinet_plugin.utils import from_plain, sanitize_checkpoint

NUM_ITERS = 4  # per epoch
_names = itertools.count()


class Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.bn(self.fc(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(out, labels))
        return out


def runner(work_dir, epochs, hooks=True, resume_from=None):
    gen = torch.Generator().manual_seed(0)
    data = [
        dict(inputs=torch.randn(4, generator=gen), labels=i % 2)
        for i in range(4 * NUM_ITERS)
    ]
    return Runner(
        model=Tiny(),
        work_dir=str(work_dir),
        experiment_name=f'weights_only_{next(_names)}',
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='WeightsOnlyCheckpointHook')]
        if hooks else [],
        load_from=resume_from,
        resume=resume_from is not None,
        randomness=dict(seed=0),
        default_scope='mmaction',
        log_level='WARNING')


@pytest.fixture(scope='module')
def first_epoch(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('first')
    run = runner(work_dir, 1)
    run.train()
    losses = run.message_hub.get_scalar('train/loss').data[0].copy()
    return osp.join(work_dir, 'epoch_1.pth'), losses


def test_checkpoint_loads_with_plain_torch(first_epoch):
    path, losses = first_epoch
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    checkpoint = torch.load(path)
    plain = checkpoint['message_hub']['log_scalars']['train/loss']
    assert plain['__plain_type__'] == 'HistoryBuffer'
    torch.testing.assert_close(plain['log_history'], torch.from_numpy(losses))
    assert isinstance(checkpoint['message_hub']['runtime_info']['iter'], int)


def _safe_globals():
    return set(torch.serialization.get_safe_globals())


def test_resume_restores_the_message_hub(first_epoch, tmp_path):
    path, losses = first_epoch
    before = _safe_globals()
    run = runner(tmp_path, 2, resume_from=path)
    run.train()
    assert run.epoch == 2 and run.iter == 2 * NUM_ITERS
    buffer = run.message_hub.get_scalar('train/loss')
    assert isinstance(buffer, HistoryBuffer)
    # Epoch 1's history came back from the file; epoch 2's followed.
    assert len(buffer.data[0]) == 2 * NUM_ITERS
    np.testing.assert_array_equal(buffer.data[0][:NUM_ITERS], losses)
    assert _safe_globals() == before
    # Plain mmengine reads the file too, but drops the logged history.
    plain = runner(tmp_path / 'plain', 2, hooks=False, resume_from=path)
    plain.train()
    assert len(plain.message_hub.get_scalar('train/loss').data[0]) == \
        NUM_ITERS


def test_checkpoint_written_without_the_hook(first_epoch, tmp_path):
    """As earlier versions of the plugin wrote them: ``HistoryBuffer`` and
    numpy objects (they replaced ``HistoryBuffer.__getstate__`` so that
    no ``getattr`` was pickled). Refused, naming the command that converts
    it once; the converted file resumes with its logged history."""
    path, losses = first_epoch
    legacy = str(tmp_path / 'legacy.pth')

    def getstate(self):
        return {
            k: v
            for k, v in self.__dict__.items() if k != 'statistics_methods'
        }

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', getstate)
        torch.save(from_plain(torch.load(path)), legacy)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(legacy)
    # mmengine's own local loader, as in a process where nothing put the
    # plugin's in place: the hook does, before the Runner reads.
    CheckpointLoader.register_scheme(
        '', mmengine_checkpoint.load_from_local, force=True)
    with pytest.raises(RuntimeError) as info:
        runner(tmp_path / 'refused', 2, resume_from=legacy).train()
    message = str(info.value)
    assert message.startswith(f'checkpoint {legacy}: ')
    assert 'HistoryBuffer' in message
    assert message.endswith(f'python tools/sanitize_checkpoint.py {legacy} '
                            'OUT')
    converted = sanitize_checkpoint(legacy, str(tmp_path / 'converted.pth'))
    before = _safe_globals()
    run = runner(tmp_path / 'resumed', 2, resume_from=converted)
    run.train()
    assert run.iter == 2 * NUM_ITERS
    np.testing.assert_array_equal(
        run.message_hub.get_scalar('train/loss').data[0][:NUM_ITERS], losses)
    assert _safe_globals() == before


def test_conversion_is_idempotent(first_epoch):
    path, _ = first_epoch
    hook = WeightsOnlyCheckpointHook()
    checkpoint = torch.load(path)
    hook.after_load_checkpoint(None, checkpoint)
    hook.after_load_checkpoint(None, checkpoint)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    hook.before_save_checkpoint(None, checkpoint)
    hook.before_save_checkpoint(None, checkpoint)
    assert checkpoint['message_hub']['log_scalars']['train/loss'][
        '__plain_type__'] == 'HistoryBuffer'
