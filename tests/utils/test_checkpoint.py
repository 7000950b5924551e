"""The plugin's checkpoint loader, and mmengine Runner checkpoints that load
with ``weights_only=True`` without changing torch or mmengine on import."""
import collections
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModule
from mmengine.runner import CheckpointLoader

import hallucinet_plugin.engine.hooks.weights_only_checkpoint_hook  # noqa
from hallucinet_plugin.utils import (
    from_plain,
    load_checkpoint_into,
    load_state_dict_from,
    read_checkpoint,
    sanitize_checkpoint,
    to_plain,
)
from hallucinet_plugin.utils.checkpoint_sources import allowlist
from hallucinet_plugin.utils.pickle_data import HistoryBufferSpec

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_ITERS = 4  # 16 samples in batches of 4, one epoch
LR = 0.01

# One epoch of a tiny model with a real mmengine Runner and CheckpointHook.
# Run in this process with WeightsOnlyCheckpointHook and, as plain mmengine,
# in a subprocess that never imports hallucinet_plugin.
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


def train(work_dir, custom_hooks=()):
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
        custom_hooks=list(custom_hooks),
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
    return namespace['train'](
        work_dir, [dict(type='WeightsOnlyCheckpointHook')])


def _safe_globals():
    return [
        obj[0] if isinstance(obj, tuple) else obj
        for obj in torch.serialization.get_safe_globals()
    ]


@pytest.fixture(scope='module')
def plugin_checkpoint(tmp_path_factory):
    """A checkpoint written with WeightsOnlyCheckpointHook, and the message
    hub's scalars."""
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


@pytest.fixture(scope='module')
def legacy_checkpoint(plain_checkpoint, tmp_path_factory):
    """The same checkpoint as earlier versions of the plugin wrote it: the
    message hub's ``HistoryBuffer`` and numpy objects, without ``getattr``
    (they replaced ``HistoryBuffer.__getstate__`` on import)."""
    # Our own file: the full unpickling is trusted here only.
    checkpoint = torch.load(plain_checkpoint, weights_only=False)
    path = str(tmp_path_factory.mktemp('legacy') / 'epoch_1.pth')

    def getstate(self):
        return {
            k: v
            for k, v in self.__dict__.items() if k != 'statistics_methods'
        }

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', getstate)
        torch.save(checkpoint, path)
    return path


# --------------------------------------------------- no patching on import
def test_import_changes_neither_torch_nor_mmengine(plugin_checkpoint):
    path, _ = plugin_checkpoint
    script = f'''
import torch
# torch allowlists its own DTensor types when this is first imported.
import torch.distributed.tensor
from mmengine.logging import HistoryBuffer

before = set(torch.serialization.get_safe_globals())
getstate = HistoryBuffer.__getstate__
import hallucinet_plugin
from hallucinet_plugin.utils import read_checkpoint

assert set(torch.serialization.get_safe_globals()) == before
assert HistoryBuffer.__getstate__ is getstate
# The loader's allowlist holds only while it reads.
read_checkpoint({path!r})
assert set(torch.serialization.get_safe_globals()) == before
print('unchanged')
'''
    proc = subprocess.run([sys.executable, '-c', script],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'unchanged' in proc.stdout


def test_allowlist_is_scoped_and_sets_numpy_and_mmengine_aside():
    """Reads see none of the user's entries for numpy's or mmengine's names
    (allowlisting those classes is not memory-safe), the user's others, and
    what the reader adds (the sanitizer's stand-ins); all as before after."""
    before = set(torch.serialization.get_safe_globals())
    user = [HistoryBuffer, np.dtype, np.ndarray, collections.Counter]
    ours = (HistoryBufferSpec, 'mmengine.logging.history_buffer.HistoryBuffer')
    with torch.serialization.safe_globals(user):
        with allowlist():
            assert collections.Counter in _safe_globals()
            assert not {HistoryBuffer, np.ndarray, np.dtype} & set(
                _safe_globals())
        with allowlist([ours]):
            assert not {HistoryBuffer, np.ndarray, np.dtype} & set(
                _safe_globals())
            assert HistoryBufferSpec in _safe_globals()
            assert getattr not in _safe_globals()
        assert set(user) <= set(_safe_globals())
        assert HistoryBufferSpec not in _safe_globals()
    assert set(torch.serialization.get_safe_globals()) == before


# ------------------------------------------------ the Runner's checkpoints
def test_hook_checkpoint_loads_with_plain_torch(plugin_checkpoint):
    path, scalars = plugin_checkpoint
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    # torch's default is weights_only=True, and nothing is allowlisted.
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

    # from_plain gives the message hub back as mmengine wrote it.
    log_scalars = from_plain(checkpoint)['message_hub']['log_scalars']
    assert set(log_scalars) == set(scalars)
    for key, (logs, counts) in scalars.items():
        buffer = log_scalars[key]
        assert isinstance(buffer, HistoryBuffer)
        np.testing.assert_array_equal(buffer.data[0], logs)
        np.testing.assert_array_equal(buffer.data[1], counts)
        assert buffer.data[0].dtype == logs.dtype
    lr = log_scalars['train/lr']
    np.testing.assert_allclose(lr.data[0], [LR] * NUM_ITERS)
    # The default statistics work on the restored buffers.
    loss = log_scalars['train/loss']
    assert loss.statistics('mean') == pytest.approx(
        np.mean(scalars['train/loss'][0]))
    assert loss.current() == scalars['train/loss'][0][-1]


def test_plain_mmengine_checkpoint_is_refused(plain_checkpoint):
    found = torch.serialization.get_unsafe_globals_in_checkpoint(
        plain_checkpoint)
    assert 'builtins.getattr' in found
    with pytest.raises(pickle.UnpicklingError):
        torch.load(plain_checkpoint)
    # The loader names the refused global, does not retry, and names the
    # command that converts the file once.
    command = f'python tools/sanitize_checkpoint.py {plain_checkpoint} OUT'
    with pytest.raises(RuntimeError) as info:
        read_checkpoint(plain_checkpoint)
    message = str(info.value)
    assert message.startswith(f'checkpoint {plain_checkpoint}: ')
    assert 'getattr' in message and 'not retried' in message
    assert message.endswith(command + ' --trust')


def test_zoo_form_of_a_plain_mmengine_checkpoint_needs_no_conversion(
        plain_checkpoint, tmp_path):
    """What OpenMMLab publishes: mmaction2's tools/deployment/
    publish_model.py drops the message hub, optimizer and schedulers; the
    rest (meta, state dict) reads as it is."""
    # Our own file: the full unpickling is trusted here only.
    checkpoint = torch.load(plain_checkpoint, weights_only=False)
    for key in ('message_hub', 'optimizer', 'param_schedulers'):
        del checkpoint[key]
    published = str(tmp_path / 'published.pth')
    torch.save(checkpoint, published)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        published) == []
    assert read_checkpoint(published)['meta']['iter'] == NUM_ITERS


def test_legacy_checkpoint_is_refused_until_converted_once(
        legacy_checkpoint, tmp_path):
    found = torch.serialization.get_unsafe_globals_in_checkpoint(
        legacy_checkpoint)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in found
    assert 'builtins.getattr' not in found
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(legacy_checkpoint)
    # Every ordinary read refuses it, naming the file and the command.
    command = f'python tools/sanitize_checkpoint.py {legacy_checkpoint} OUT'
    for read in (read_checkpoint, load_state_dict_from):
        with pytest.raises(RuntimeError) as info:
            read(legacy_checkpoint)
        message = str(info.value)
        assert message.startswith(f'checkpoint {legacy_checkpoint}: ')
        assert 'HistoryBuffer' in message and message.endswith(command)
    converted = sanitize_checkpoint(legacy_checkpoint,
                                    str(tmp_path / 'converted.pth'))
    checkpoint = from_plain(read_checkpoint(converted))
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert len(buffer.data[0]) == NUM_ITERS
    state = load_state_dict_from(converted)
    assert state['bn.num_batches_tracked'] == NUM_ITERS


def test_sanitize_refuses_without_trust(plain_checkpoint, tmp_path):
    path = str(tmp_path / 'copy.pth')
    shutil.copy(plain_checkpoint, path)
    with open(path, 'rb') as f:
        before = f.read()
    with pytest.raises(PermissionError, match='copy.pth.*getattr.*trust'):
        sanitize_checkpoint(path)
    with open(path, 'rb') as f:
        assert f.read() == before
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        sanitize_checkpoint(str(tmp_path / 'missing.pth'), trust=True)


def _assert_same_checkpoint(ours, reference):
    ours = from_plain(ours)
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
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
    # The input is left as it was.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        plain_checkpoint) != []
    _assert_same_checkpoint(torch.load(out), reference)

    in_place = str(tmp_path / 'in_place.pth')
    shutil.copy(plain_checkpoint, in_place)
    assert sanitize_checkpoint(in_place, trust=True) == in_place
    _assert_same_checkpoint(torch.load(in_place), reference)
    assert not osp.exists(in_place + '.tmp')


def test_sanitize_legacy_checkpoint_needs_no_trust(legacy_checkpoint,
                                                   plain_checkpoint,
                                                   tmp_path):
    reference = torch.load(plain_checkpoint, weights_only=False)
    out = str(tmp_path / 'clean.pth')
    assert sanitize_checkpoint(legacy_checkpoint, out) == out
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
    _assert_same_checkpoint(torch.load(out), reference)


def _run_tool(*args, cwd):
    return subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'sanitize_checkpoint.py'), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300)


def test_sanitize_tool_refuses_without_trust(plain_checkpoint, tmp_path):
    out = str(tmp_path / 'tool_clean.pth')
    proc = _run_tool(plain_checkpoint, out, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'builtins.getattr' in proc.stdout
    assert 'refused:' in proc.stderr and '--trust' in proc.stderr
    assert not osp.exists(out)


def test_sanitize_tool_legacy_and_clean_files(legacy_checkpoint,
                                              plugin_checkpoint, tmp_path):
    out = str(tmp_path / 'tool_clean.pth')
    proc = _run_tool(legacy_checkpoint, out, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'HistoryBuffer' in proc.stdout and f'wrote {out}' in proc.stdout
    assert torch.load(out)['meta']['iter'] == NUM_ITERS
    proc = _run_tool(plugin_checkpoint[0], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'already loads with weights_only=True' in proc.stdout


@pytest.mark.slow
def test_sanitize_tool_with_trust(plain_checkpoint, tmp_path):
    out = str(tmp_path / 'tool_clean.pth')
    proc = _run_tool(plain_checkpoint, out, '--trust', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'wrote {out}' in proc.stdout
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
    assert torch.load(out)['meta']['iter'] == NUM_ITERS


# ------------------------------------------------------------- plain data
Point = collections.namedtuple('Point', 'x y')


def test_to_plain_round_trip():
    buffer = HistoryBuffer([1., 3.], [1, 2], max_length=7)
    ints = HistoryBuffer([1, 2], [1, 1])
    data = dict(
        buffer=buffer,
        ints=ints,
        array=np.arange(6, dtype=np.float32).reshape(2, 3),
        scalar=np.float64(0.5),
        nested=[(np.int64(3), 'a'), Point(np.arange(2), None)],
        words=np.array(['a', 'b']),
        tensor=torch.ones(2))
    plain = to_plain(data)
    assert type(plain['scalar']) is float and plain['scalar'] == 0.5
    assert plain['nested'][0] == (3, 'a')
    assert plain['words'] == ['a', 'b']
    assert plain['tensor'] is data['tensor']
    back = from_plain(plain)
    assert isinstance(back['buffer'], HistoryBuffer)
    np.testing.assert_array_equal(back['buffer'].data[0], [1., 3.])
    np.testing.assert_array_equal(back['buffer'].data[1], [1, 2])
    assert back['buffer'].max_length == 7
    assert back['buffer'].mean() == pytest.approx(4 / 3)
    assert back['ints'].data[0].dtype == ints.data[0].dtype
    assert back['array'].dtype == np.float32
    np.testing.assert_array_equal(back['array'], data['array'])
    assert isinstance(back['nested'][1], Point)
    np.testing.assert_array_equal(back['nested'][1].x, [0, 1])


def test_to_plain_saves_without_globals(tmp_path):
    data = to_plain(
        dict(h=HistoryBuffer([1.], [1]), a=np.zeros(2), s=np.int32(1)))
    torch.save(data, tmp_path / 'plain.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(tmp_path / 'plain.pth')) == []


def test_plain_conversion_keeps_untouched_containers():
    model = nn.BatchNorm1d(2)
    state = model.state_dict()
    checkpoint = dict(state_dict=state, meta=dict(epoch=1))
    assert to_plain(checkpoint) is checkpoint
    assert from_plain(checkpoint) is checkpoint
    # Its _metadata (module versions) survives.
    assert to_plain(dict(state_dict=state, s=np.int64(1)))['state_dict'] \
        is state


# -------------------------------------------------------------- the loader
class Net(BaseModule):

    def __init__(self, classes=3):
        super().__init__(init_cfg=dict(type='Constant', val=0.5,
                                       layer='Linear'))
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
        self.cls_head = nn.Linear(8, classes)


def _net(seed, **kwargs):
    torch.manual_seed(seed)
    net = Net(**kwargs)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
        net.backbone[1].running_mean.normal_()
    return net


def _save(state, path, wrap=True):
    torch.save(dict(state_dict=state, meta=dict(epoch=3)) if wrap else state,
               str(path))
    return str(path)


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _assert_state(module, expected):
    for key, value in module.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_read_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"teacher_ckpt not found: .*no.pth \(set it to "
                       r"the teacher's checkpoint\)"):
        read_checkpoint(
            tmp_path / 'no.pth',
            key_name='teacher_ckpt',
            what="the teacher's checkpoint")
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(RuntimeError,
                       match=r'notes.pth: torch.load\(weights_only=True\) '
                       'failed'):
        read_checkpoint(text)
    torch.save(torch.zeros(2), tmp_path / 'tensor.pth')
    with pytest.raises(ValueError, match='tensor.pth: not a checkpoint: it '
                       'holds a Tensor'):
        read_checkpoint(tmp_path / 'tensor.pth')
    # Another layout reads, but holds no state dict.
    torch.save(dict(model=dict(w=torch.zeros(1))), tmp_path / 'other.pth')
    assert set(read_checkpoint(tmp_path / 'other.pth')) == {'model'}
    with pytest.raises(ValueError, match=r"other.pth: no 'state_dict' key "
                       r"\(found keys: \['model'\]\) and not a state dict "
                       "itself: 'model' holds a dict"):
        load_state_dict_from(tmp_path / 'other.pth')
    torch.save(dict(state_dict=dict(w=[1.])), tmp_path / 'list.pth')
    with pytest.raises(ValueError,
                       match="'state_dict' entry 'w' is not a tensor"):
        load_state_dict_from(tmp_path / 'list.pth')


class _Payload:
    """Would create a directory when unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


def test_read_never_runs_code_from_the_file(tmp_path):
    target = str(tmp_path / 'created_by_the_file')
    path = str(tmp_path / 'forged.pth')
    torch.save(
        dict(state_dict={'w': torch.zeros(1)}, meta=_Payload(target)), path)
    with pytest.raises(RuntimeError, match='(?s)mkdir.*not retried'):
        load_state_dict_from(path)
    assert not osp.exists(target)


@pytest.fixture
def fake_scheme():
    """A URL scheme served by mmengine's CheckpointLoader from memory."""
    served = {}

    def loader(filename, map_location):
        return served[filename]

    CheckpointLoader.register_scheme('hallutest://', loader, force=True)
    try:
        yield served
    finally:
        CheckpointLoader._schemes.pop('hallutest://')


def test_schemes_only_mmengine_knows_are_refused(fake_scheme, tmp_path):
    """mmengine's loaders may unpickle fully: a scheme the plugin does not
    read itself (see test_checkpoint_sources.py) is not handed to them."""
    fake_scheme['hallutest://w.pth'] = dict(
        state_dict={'module.w': torch.ones(2)})
    with pytest.raises(FileNotFoundError, match='hallutest://w.pth'):
        load_state_dict_from('hallutest://w.pth')
    not_a_dict = tmp_path / 'list.pth'
    torch.save([1, 2], not_a_dict)
    with pytest.raises(ValueError, match='not a checkpoint'):
        read_checkpoint(str(not_a_dict))


def test_state_dict_keys_revised_and_selected(tmp_path):
    state = {
        'module.backbone.w': torch.zeros(1),
        'module.cls_head.b': torch.ones(1)
    }
    path = _save(state, tmp_path / 'ddp.pth')
    assert list(load_state_dict_from(path)) == ['backbone.w', 'cls_head.b']
    assert list(load_state_dict_from(path, prefix='cls_head.')) == ['b']
    assert list(
        load_state_dict_from(
            path, revise_keys=[(r'^module\.', ''), (r'^backbone', 'stem')
                               ])) == ['stem.w', 'cls_head.b']
    with pytest.raises(KeyError, match=r"ddp.pth has no tensor under "
                       r"'neck.' \(it has \['backbone.', 'cls_head.'\]\)"):
        load_state_dict_from(path, prefix='neck.')
    both = _save({'module.w': torch.zeros(1), 'w': torch.ones(1)},
                 tmp_path / 'both.pth', wrap=False)
    with pytest.raises(ValueError, match="'module.w' and 'w' both become"):
        load_state_dict_from(both)


def test_load_into_all_of_a_module_and_mark_it_initialised(tmp_path):
    source = _net(1)
    path = _save({'module.' + k: v
                  for k, v in source.state_dict().items()},
                 tmp_path / 'net.pth')
    net = _net(2)
    loaded = load_checkpoint_into(net, path)
    assert list(loaded) == [''] and len(loaded['']) == 9
    _assert_state(net, source.state_dict())
    net.init_weights()  # the constant init_cfg does not run over them
    _assert_state(net, source.state_dict())


def test_load_into_parts_with_a_prefix_mapping(tmp_path):
    source = _net(1)
    state = {
        k.replace('backbone.', 'student.', 1): v
        for k, v in source.state_dict().items()
    }
    net = _net(2)
    before = _snapshot(net)
    loaded = load_checkpoint_into(
        net, state, prefixes={'student.': 'backbone.'})
    assert sorted(loaded['backbone.']) == sorted(
        k for k in before if k.startswith('backbone.'))
    expected = dict(before)
    expected.update({
        k: v
        for k, v in source.state_dict().items() if k.startswith('backbone.')
    })
    _assert_state(net, expected)


def test_load_into_refuses_and_changes_nothing(tmp_path):
    source = _net(1).state_dict()
    net = _net(2)
    before = _snapshot(net)
    other = dict(source, **{'cls_head.weight': torch.zeros(5, 8)})
    with pytest.raises(ValueError,
                       match=r"the state dict does not fit the Net: 1 tensors "
                       r"of other shapes \(e.g. \['cls_head.weight: \(5, 8\) "
                       r"in the checkpoint, \(3, 8\) in the model'\]\)"):
        load_checkpoint_into(net, other)
    partial = {k: v for k, v in source.items() if k != 'cls_head.bias'}
    with pytest.raises(KeyError, match=r"lacks 1 of the 2 cls_head tensors "
                       r"\(missing keys, e.g. \['cls_head.bias'\]\)"):
        load_checkpoint_into(net, partial, prefixes=('backbone.', 'cls_head.'))
    extra = dict(source, **{'cls_head.extra': torch.zeros(1)})
    with pytest.raises(KeyError, match=r"has 1 tensors the model lacks "
                       r"\(unexpected keys, e.g. \['cls_head.extra'\]\)"):
        load_checkpoint_into(net, extra)
    with pytest.raises(KeyError, match="lacks 2 of the 2 cls_head tensors; "
                       "it has no tensor under 'cls_head.'"):
        load_checkpoint_into(
            net, {k: v
                  for k, v in source.items() if 'backbone' in k},
            prefixes=('backbone.', 'cls_head.'))
    with pytest.raises(KeyError, match="the Net has no tensor under 'neck.'"):
        load_checkpoint_into(net, source, prefixes='neck.')
    with pytest.raises(ValueError, match='ending with'):
        load_checkpoint_into(net, source, prefixes='backbone')
    # All or nothing: the backbone, checked first, was not written either.
    _assert_state(net, before)
    assert not net.is_init


def test_load_into_tolerances(tmp_path):
    source = _net(1).state_dict()
    net = _net(2, classes=5)
    before = _snapshot(net)
    # A classifier for other classes, optional: the rest loads.
    load_checkpoint_into(net, source, optional=('cls_head.', ))
    expected = dict(source)
    expected.update({k: v for k, v in before.items() if 'cls_head' in k})
    _assert_state(net, expected)
    partial = {k: v for k, v in source.items() if k != 'backbone.0.bias'}
    with pytest.raises(KeyError, match='lacks 1 of the 9 tensors'):
        load_checkpoint_into(net, partial, optional=('cls_head.', ))
    load_checkpoint_into(
        net, partial, optional=('cls_head.', ), max_missing=1)
    extra = dict(source, **{'teacher.w': torch.zeros(1)})
    with pytest.raises(KeyError, match='unexpected'):
        load_checkpoint_into(net, extra, optional=('cls_head.', ))
    load_checkpoint_into(
        net, extra, optional=('cls_head.', ), allow_unexpected=True)
    load_checkpoint_into(
        net, extra, optional=('cls_head.', ), exclude=('teacher.', ))
    # Non-strict: whatever both hold.
    load_checkpoint_into(
        _net(3), {'cls_head.bias': torch.zeros(3), 'x.y': torch.zeros(1)},
        max_missing=None,
        allow_unexpected=True)


def test_load_into_converts_other_layouts(tmp_path):
    source = _net(1).state_dict()
    path = str(tmp_path / 'other_layout.pth')
    torch.save(dict(weights={'net.' + k: v for k, v in source.items()}), path)
    seen = []

    def convert(checkpoint, filename):
        seen.append(filename)
        return {k[4:]: v for k, v in checkpoint['weights'].items()}

    net = _net(2)
    load_checkpoint_into(net, path, convert=convert)
    assert seen == [path]
    _assert_state(net, source)
