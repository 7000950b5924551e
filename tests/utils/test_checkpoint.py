import os.path as osp
import pickle
import pickletools
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import hallucinet_plugin  # noqa: F401  (the import installs the fix)
from hallucinet_plugin.utils import sanitize_checkpoint, unsafe_globals

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_ITERS = 4  # 16 samples in batches of 4, one epoch
LR = 0.01

# One epoch of a tiny model with a real mmengine Runner and CheckpointHook.
# Run in this process (the plugin imported) and, as plain mmengine, in a
# subprocess that never imports hallucinet_plugin.
TRAIN_SCRIPT = f'''
import sys

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn


class TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.bn(self.fc(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(out, labels))
        return out


def train(work_dir):
    gen = torch.Generator().manual_seed(0)
    data = [
        dict(inputs=torch.randn(4, generator=gen), labels=i % 2)
        for i in range(16)
    ]
    runner = Runner(
        model=TinyModel(),
        work_dir=work_dir,
        experiment_name=f'tiny_{{id(data)}}',
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr={LR})),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        # The scope the plugin's users run under; it stays the current
        # scope after training, where later tests expect mmaction's.
        default_scope='mmaction',
        log_level='WARNING')
    runner.train()
    return runner


if __name__ == '__main__':
    train(sys.argv[1])
    assert 'hallucinet_plugin' not in sys.modules
'''


def _train_here(work_dir):
    namespace = {'__name__': 'tiny_training'}
    exec(compile(TRAIN_SCRIPT, 'tiny_training', 'exec'), namespace)
    return namespace['train'](work_dir)


@pytest.fixture(scope='module')
def plugin_checkpoint(tmp_path_factory):
    """A checkpoint written with the plugin imported, and its message hub."""
    work_dir = str(tmp_path_factory.mktemp('with_plugin'))
    runner = _train_here(work_dir)
    scalars = {
        key: buffer.data
        for key, buffer in runner.message_hub.log_scalars.items()
    }
    return osp.join(work_dir, 'epoch_1.pth'), scalars


@pytest.fixture(scope='module')
def plain_checkpoint(tmp_path_factory):
    """A checkpoint written by plain mmengine, in a fresh interpreter."""
    work_dir = str(tmp_path_factory.mktemp('plain_mmengine'))
    proc = subprocess.run([sys.executable, '-c', TRAIN_SCRIPT, work_dir],
                          cwd=work_dir,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return osp.join(work_dir, 'epoch_1.pth')


def test_plugin_checkpoint_loads_weights_only(plugin_checkpoint):
    path, scalars = plugin_checkpoint
    assert unsafe_globals(path) == []
    # torch's default is weights_only=True.
    checkpoint = torch.load(path)
    assert set(checkpoint) >= {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'
    }
    assert checkpoint['meta']['epoch'] == 1
    assert checkpoint['meta']['iter'] == NUM_ITERS
    assert set(checkpoint['state_dict']) >= {
        'fc.weight', 'bn.running_mean', 'bn.num_batches_tracked'
    }
    assert checkpoint['state_dict']['bn.num_batches_tracked'] == NUM_ITERS

    log_scalars = checkpoint['message_hub']['log_scalars']
    assert set(log_scalars) == set(scalars)
    for key, (logs, counts) in scalars.items():
        buffer = log_scalars[key]
        assert isinstance(buffer, HistoryBuffer)
        np.testing.assert_array_equal(buffer.data[0], logs)
        np.testing.assert_array_equal(buffer.data[1], counts)
    lr = log_scalars['train/lr']
    np.testing.assert_allclose(lr.data[0], [LR] * NUM_ITERS)
    # The default statistics work on the loaded buffers.
    loss = log_scalars['train/loss']
    assert len(loss.data[0]) == NUM_ITERS
    assert loss.statistics('mean') == pytest.approx(np.mean(scalars[
        'train/loss'][0]))
    assert loss.current() == scalars['train/loss'][0][-1]


def test_plain_mmengine_checkpoint_is_refused(plain_checkpoint):
    found = torch.serialization.get_unsafe_globals_in_checkpoint(
        plain_checkpoint)
    assert 'builtins.getattr' in found
    assert 'builtins.getattr' in unsafe_globals(plain_checkpoint)
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        torch.load(plain_checkpoint)


def test_sanitize_refuses_without_trust(plain_checkpoint, tmp_path):
    path = str(tmp_path / 'copy.pth')
    shutil.copy(plain_checkpoint, path)
    with open(path, 'rb') as f:
        before = f.read()
    with pytest.raises(PermissionError, match='copy.pth.*trust'):
        sanitize_checkpoint(path)
    with open(path, 'rb') as f:
        assert f.read() == before
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        sanitize_checkpoint(str(tmp_path / 'missing.pth'), trust=True)


def _assert_same_checkpoint(ours, reference):
    assert ours['meta']['iter'] == reference['meta']['iter']
    assert set(ours['state_dict']) == set(reference['state_dict'])
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(ours['state_dict'][key], value)
    for key, buffer in reference['message_hub']['log_scalars'].items():
        loaded = ours['message_hub']['log_scalars'][key]
        np.testing.assert_array_equal(loaded.data[0], buffer.data[0])
        np.testing.assert_array_equal(loaded.data[1], buffer.data[1])


def test_sanitize_with_trust_rewrites_a_loadable_file(plain_checkpoint,
                                                      tmp_path):
    # Our own file: the full unpickling is trusted here only.
    reference = torch.load(plain_checkpoint, weights_only=False)
    out = str(tmp_path / 'clean.pth')
    assert sanitize_checkpoint(plain_checkpoint, out, trust=True) == out
    assert unsafe_globals(out) == []
    assert unsafe_globals(plain_checkpoint) != []  # input left as it was
    _assert_same_checkpoint(torch.load(out), reference)

    in_place = str(tmp_path / 'in_place.pth')
    shutil.copy(plain_checkpoint, in_place)
    assert sanitize_checkpoint(in_place, trust=True) == in_place
    _assert_same_checkpoint(torch.load(in_place), reference)
    assert not osp.exists(in_place + '.tmp')


def _run_tool(*args, cwd):
    return subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'sanitize_checkpoint.py'), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300)


def test_sanitize_tool_refuses_without_trust(plain_checkpoint, tmp_path):
    out = str(tmp_path / 'tool_clean.pth')
    proc = _run_tool(plain_checkpoint, '--out', out, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'builtins.getattr' in proc.stdout
    assert 'refusing without --trust' in proc.stderr
    assert not osp.exists(out)


@pytest.mark.slow
def test_sanitize_tool_with_trust(plain_checkpoint, tmp_path):
    out = str(tmp_path / 'tool_clean.pth')
    proc = _run_tool(plain_checkpoint, '--out', out, '--trust',
                     cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'wrote {out}' in proc.stdout
    assert unsafe_globals(out) == []
    assert torch.load(out)['meta']['iter'] == NUM_ITERS


def _safe_globals():
    return [
        obj[0] if isinstance(obj, tuple) else obj
        for obj in torch.serialization.get_safe_globals()
    ]


def test_getattr_is_not_allowlisted(tmp_path):
    assert HistoryBuffer in _safe_globals()
    assert getattr not in _safe_globals()
    # Neither after the helpers register their globals again.
    buffer = HistoryBuffer([1.], [1])
    torch.save(dict(buffer=buffer), str(tmp_path / 'b.pth'))
    assert unsafe_globals(str(tmp_path / 'b.pth')) == []
    assert getattr not in _safe_globals()


def _pickled_globals(data: bytes):
    """``'module name'`` of each global in a protocol-2 pickle."""
    return [
        arg for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'
    ]


def test_history_buffer_pickles_without_functions():
    buffer = HistoryBuffer([1., 3.], [1, 1])
    state_before = dict(buffer.__dict__)
    data = pickle.dumps(buffer, protocol=2)
    # mmengine's own __getstate__ added this key to the live object.
    assert buffer.__dict__.keys() == state_before.keys()
    assert 'getattr' not in str(_pickled_globals(data))
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.data[0], [1., 3.])
    assert loaded.mean() == 2.
    assert loaded.statistics('max') == 3.


def _last_two_sum(self):
    return self._log_history[-2:].sum()


def test_history_buffer_keeps_custom_statistics():
    methods = HistoryBuffer._statistics_methods
    assert '_last_two_sum' not in methods
    HistoryBuffer.register_statistics(_last_two_sum)
    try:
        buffer = HistoryBuffer([1., 2., 4.], [1, 1, 1])
        keys_before = set(buffer.__dict__)
        data = pickle.dumps(buffer, protocol=2)
        assert set(buffer.__dict__) == keys_before
        assert '_last_two_sum' in str(_pickled_globals(data))
        # As in a fresh process: the custom statistic comes from the file.
        del methods['_last_two_sum']
        loaded = pickle.loads(data)
        assert loaded.statistics('_last_two_sum') == 6.
        assert loaded.statistics('min') == 1.
    finally:
        methods.pop('_last_two_sum', None)
    assert '_last_two_sum' not in HistoryBuffer._statistics_methods
