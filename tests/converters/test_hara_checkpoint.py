import argparse
import importlib.util
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmengine.runner import load_checkpoint

import hallucinet_plugin.models.backbones.resnext3d  # noqa: F401
from hallucinet_plugin.converters.hara_checkpoint import (
    convert_hara_checkpoint,
    load_resnext3d_state_dict,
)
from hallucinet_plugin.models.backbones.resnext3d import ResNeXt3D

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'convert_hara_checkpoint.py'
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
# Tiny widths: planes 32, 64, 128, 256 -> 512 output channels.
TINY = dict(base_planes=32, cardinality=4, stem_channels=16)
NUM_CLASSES = 5


def _hara_shapes(depth, base_planes=128, cardinality=32, stem_channels=64,
                 in_channels=3, num_classes=400, bn_counter=True):
    """Names and shapes of Hara's ResNeXt state_dict, written out from the
    layout of their models/resnext.py, independently of ResNeXt3D."""
    shapes = OrderedDict()

    def bn(name, channels):
        shapes[f'{name}.weight'] = (channels, )
        shapes[f'{name}.bias'] = (channels, )
        shapes[f'{name}.running_mean'] = (channels, )
        shapes[f'{name}.running_var'] = (channels, )
        if bn_counter:
            shapes[f'{name}.num_batches_tracked'] = ()

    shapes['conv1.weight'] = (stem_channels, in_channels, 7, 7, 7)
    bn('bn1', stem_channels)
    inplanes = stem_channels
    for i, num in enumerate(BLOCKS[depth]):
        planes = base_planes * 2**i
        mid = cardinality * (planes // 32)
        for j in range(num):
            p = f'layer{i + 1}.{j}'
            shapes[f'{p}.conv1.weight'] = (mid, inplanes, 1, 1, 1)
            bn(f'{p}.bn1', mid)
            shapes[f'{p}.conv2.weight'] = (mid, mid // cardinality, 3, 3, 3)
            bn(f'{p}.bn2', mid)
            shapes[f'{p}.conv3.weight'] = (2 * planes, mid, 1, 1, 1)
            bn(f'{p}.bn3', 2 * planes)
            if j == 0 and (i > 0 or inplanes != 2 * planes):
                shapes[f'{p}.downsample.0.weight'] = (2 * planes, inplanes, 1,
                                                      1, 1)
                bn(f'{p}.downsample.1', 2 * planes)
            inplanes = 2 * planes
    if num_classes:
        shapes['fc.weight'] = (num_classes, inplanes)
        shapes['fc.bias'] = (num_classes, )
    return shapes


def _random_state(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for name, shape in shapes.items():
        if name.endswith('num_batches_tracked'):
            state[name] = torch.tensor(123)
        elif name.endswith('running_var'):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        elif name.endswith('.weight') and len(shape) == 1:  # BN gamma
            state[name] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) == 1:
            state[name] = torch.randn(shape, generator=gen) * 0.1
        else:
            fan_in = torch.Size(shape[1:]).numel()
            state[name] = torch.randn(
                shape, generator=gen) * (2 / fan_in)**0.5
    return state


def _save_hara(path, depth=50, arch='default', module_prefix=True,
               bn_counter=True, num_classes=NUM_CLASSES, extra=None,
               legacy_format=False):
    """Write a checkpoint exactly as Hara's main.py does."""
    state = _random_state(
        _hara_shapes(
            depth, num_classes=num_classes, bn_counter=bn_counter, **TINY))
    params = [
        torch.nn.Parameter(v.clone()) for k, v in state.items()
        if v.is_floating_point() and 'running' not in k
    ]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    checkpoint = {
        'epoch': 200,
        'state_dict': OrderedDict(
            (('module.' if module_prefix else '') + k, v)
            for k, v in state.items()),
        'optimizer': optimizer.state_dict(),
    }
    if arch == 'default':
        arch = f'resnext-{depth}'
    if arch is not None:
        checkpoint['arch'] = arch
    checkpoint.update(extra or {})
    torch.save(
        checkpoint, path, _use_new_zipfile_serialization=not legacy_format)
    return state


def _bn(x, state, name):
    return F.batch_norm(x, state[f'{name}.running_mean'],
                        state[f'{name}.running_var'], state[f'{name}.weight'],
                        state[f'{name}.bias'], False, 0.0, 1e-5)


def _hara_forward(state, x, depth=50, cardinality=4):
    """Hara's ResNeXt in eval mode, in functional form over the raw
    state_dict; returns the last feature map and the logits."""
    x = F.relu(_bn(F.conv3d(x, state['conv1.weight'], None, (1, 2, 2), 3),
                   state, 'bn1'))
    x = F.max_pool3d(x, 3, 2, 1)
    for i, num in enumerate(BLOCKS[depth]):
        for j in range(num):
            p = f'layer{i + 1}.{j}'
            stride = 2 if i > 0 and j == 0 else 1
            out = F.relu(_bn(F.conv3d(x, state[f'{p}.conv1.weight']), state,
                             f'{p}.bn1'))
            out = F.relu(
                _bn(
                    F.conv3d(out, state[f'{p}.conv2.weight'], None, stride, 1,
                             1, cardinality), state, f'{p}.bn2'))
            out = _bn(F.conv3d(out, state[f'{p}.conv3.weight']), state,
                      f'{p}.bn3')
            if f'{p}.downsample.0.weight' in state:
                x = _bn(
                    F.conv3d(x, state[f'{p}.downsample.0.weight'], None,
                             stride), state, f'{p}.downsample.1')
            x = F.relu(out + x)
    logits = F.linear(x.mean(dim=(2, 3, 4)), state['fc.weight'],
                      state['fc.bias'])
    return x, logits


def _run_tool(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=120)


def _recognizer(**backbone):
    # The recognizer builds its data preprocessor in the default scope.
    register_all_modules()
    return MODELS.build(
        dict(
            type='Recognizer3D',
            backbone=dict(type='ResNeXt3D', depth=50, **TINY, **backbone),
            cls_head=dict(
                type='I3DHead',
                num_classes=NUM_CLASSES,
                in_channels=512,
                dropout_ratio=0.5),
            data_preprocessor=dict(
                type='ActionDataPreprocessor', format_shape='NCTHW')))


def test_resnext101_keys_are_hara_keys():
    # Full width on the meta device: names, order and shapes, 1:1.
    with torch.device('meta'):
        model = ResNeXt3D(depth=101, num_classes=400)
    ours = OrderedDict(
        (k, tuple(v.shape)) for k, v in model.state_dict().items())
    assert ours == _hara_shapes(101)
    assert list(ours) == list(_hara_shapes(101))


def test_cli_converts_for_recognizer3d(tmp_path):
    src = tmp_path / 'resnext-50-kinetics.pth'
    state = _save_hara(src)
    dst = tmp_path / 'out' / 'converted.pth'

    result = _run_tool(src, dst, '--keep-fc')
    assert result.returncode == 0, result.stderr
    assert 'resnext-50' in result.stdout and str(dst) in result.stdout

    converted = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(converted) == {'state_dict', 'meta'}
    meta = converted['meta']
    assert meta['source'] == 'hara' and meta['arch'] == 'resnext-50'
    assert meta['epoch'] == 200
    assert meta['resnext3d'] == dict(
        depth=50, in_channels=3, num_classes=NUM_CLASSES, **TINY)
    assert meta['fc_prefix'] == 'cls_head.fc_cls.'
    assert meta['num_batches_tracked_added'] is False
    keys = set(converted['state_dict'])
    assert 'backbone.layer3.5.conv2.weight' in keys
    assert 'cls_head.fc_cls.weight' in keys
    assert not any(k.startswith(('module.', 'fc.')) for k in keys)

    model = _recognizer()
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    loaded = model.state_dict()
    for key, value in state.items():
        ours = ('cls_head.fc_cls.' + key[3:]
                if key.startswith('fc.') else 'backbone.' + key)
        assert torch.equal(loaded[ours], value), key

    model.eval()
    x = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        feat = model.backbone(x)
        logits, _ = model.extract_feat(x[:, None], stage='head')
    ref_feat, ref_logits = _hara_forward(state, x)
    assert feat.shape == ref_feat.shape == (2, 512, 1, 2, 2)
    assert torch.allclose(feat, ref_feat, rtol=1e-4, atol=1e-5)
    assert torch.allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)


def test_function_bare_prefix_drops_fc(tmp_path):
    src = tmp_path / 'hara.pth'
    state = _save_hara(src)
    dst = tmp_path / 'bare.pth'
    meta = convert_hara_checkpoint(str(src), str(dst), prefix='')
    assert meta['fc_prefix'] is None
    assert meta['resnext3d']['num_classes'] is None
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(converted['state_dict']) == {
        k
        for k in state if not k.startswith('fc.')
    }

    model = ResNeXt3D(depth=50, **TINY)
    model.load_state_dict(converted['state_dict'], strict=True)
    model.eval()
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        assert torch.allclose(
            model(x), _hara_forward(state, x)[0], rtol=1e-4, atol=1e-5)


def test_function_bare_prefix_keeps_fc(tmp_path):
    src = tmp_path / 'hara.pth'
    state = _save_hara(src)
    dst = tmp_path / 'bare_fc.pth'
    convert_hara_checkpoint(str(src), str(dst), keep_fc=True, prefix='')
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    assert list(converted['state_dict']) == list(state)

    model = ResNeXt3D(depth=50, num_classes=NUM_CLASSES, **TINY)
    model.load_state_dict(converted['state_dict'], strict=True)
    model.eval()
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        logits = model.forward_head(model(x))
    assert torch.allclose(
        logits, _hara_forward(state, x)[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('converted', [False, True])
def test_pretrained_argument(tmp_path, converted):
    src = tmp_path / 'hara.pth'
    state = _save_hara(src)
    path = src
    if converted:
        path = tmp_path / 'converted.pth'
        convert_hara_checkpoint(str(src), str(path), keep_fc=True)

    model = ResNeXt3D(
        depth=50, num_classes=NUM_CLASSES, pretrained=str(path), **TINY)
    model.init_weights()
    assert model.is_init
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    # Inside a recognizer, the parent's init_weights must not overwrite
    # the loaded backbone (the head's fc_cls is initialised as usual).
    recognizer = _recognizer(pretrained=str(path))
    recognizer.init_weights()
    loaded = recognizer.backbone.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith('fc.')}
    assert all(torch.equal(v, state[k]) for k, v in loaded.items())


def test_pretrained_wrong_model_names_file(tmp_path):
    src = tmp_path / 'hara.pth'
    _save_hara(src)
    model = ResNeXt3D(depth=101, pretrained=str(src), **TINY)
    with pytest.raises(KeyError, match=r'hara.pth does not fit the '
                       r"ResNeXt3D: it lacks .* \['layer3\.6\."):
        model.init_weights()
    with pytest.raises(FileNotFoundError, match='pretrained not found'):
        ResNeXt3D(pretrained=str(tmp_path / 'nope.pth')).init_weights()


def test_load_resnext3d_state_dict_round_trip(tmp_path):
    src = tmp_path / 'hara.pth'
    state = _save_hara(src)
    dst = tmp_path / 'converted.pth'
    convert_hara_checkpoint(str(src), str(dst), keep_fc=True)
    for path in (src, dst):
        loaded = load_resnext3d_state_dict(str(path))
        assert list(loaded) == list(state)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_pytorch_03_checkpoint_without_bn_counters(tmp_path):
    # The 2017 Kinetics models predate BatchNorm's num_batches_tracked and
    # the zip file format.
    src = tmp_path / 'resnext-50-old.pth'
    state = _save_hara(src, bn_counter=False, legacy_format=True)
    with open(src, 'rb') as f:
        assert f.read(2) != b'PK'
    assert not any('num_batches_tracked' in k for k in state)
    dst = tmp_path / 'converted.pth'
    meta = convert_hara_checkpoint(str(src), str(dst), keep_fc=True)
    assert meta['num_batches_tracked_added'] is True
    model = _recognizer()
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    counter = model.state_dict()['backbone.layer2.0.bn2.num_batches_tracked']
    assert counter.item() == 0


def test_depth_from_layer3_without_arch_or_module_prefix(tmp_path):
    src = tmp_path / 'no_arch.pth'
    _save_hara(src, depth=101, arch=None, module_prefix=False)
    dst = tmp_path / 'converted.pth'
    meta = convert_hara_checkpoint(str(src), str(dst), prefix='')
    assert meta['resnext3d']['depth'] == 101
    assert meta['arch'] == 'resnext-101'
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    ResNeXt3D(depth=101, **TINY).load_state_dict(state_dict, strict=True)


def test_cli_reports_errors(tmp_path, capsys):
    # In-process (the subprocess path is covered above): same main().
    spec = importlib.util.spec_from_file_location('convert_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    missing = tmp_path / 'nope.pth'
    assert tool.main([str(missing), str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert 'error: checkpoint not found' in err and str(missing) in err

    src = tmp_path / 'nofc.pth'
    _save_hara(src, num_classes=None)
    assert tool.main([str(src), str(tmp_path / 'out.pth'), '--keep-fc']) == 1
    assert "has no 'fc.weight'" in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()

    assert tool.main([str(src), str(tmp_path / 'out.pth'), '--prefix',
                      '']) == 0
    assert 'ResNeXt3D(' in capsys.readouterr().out
    keys = torch.load(tmp_path / 'out.pth', weights_only=True)['state_dict']
    assert 'conv1.weight' in keys


def test_error_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        convert_hara_checkpoint(
            str(tmp_path / 'nope.pth'), str(tmp_path / 'out.pth'))


def test_error_not_a_checkpoint(tmp_path):
    src = tmp_path / 'notes.pth'
    src.write_text('not a checkpoint')
    with pytest.raises(RuntimeError, match=r'notes.pth.*weights_only=True'):
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))


def test_error_refuses_pickled_objects(tmp_path):
    # Hara's 2020 code could be changed to save its options; such a file
    # needs full unpickling, which must not happen.
    src = tmp_path / 'with_opts.pth'
    _save_hara(src, extra={'opt': argparse.Namespace(lr=0.1)})
    with pytest.raises(RuntimeError, match='not retried with weights_only'):
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))


def test_error_no_state_dict(tmp_path):
    src = tmp_path / 'bare.pth'
    torch.save({'arch': 'resnext-50', 'model': {}}, src)
    with pytest.raises(ValueError, match=r"bare.pth: no 'state_dict' key"):
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))


@pytest.mark.parametrize('arch', ['resnet-50', 'resnext-34', 'densenet'])
def test_error_unknown_arch(tmp_path, arch):
    src = tmp_path / 'arch.pth'
    _save_hara(src, arch=arch)
    with pytest.raises(ValueError, match=f"unknown arch '{arch}'"):
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))


def test_error_mismatched_keys(tmp_path):
    src = tmp_path / 'edited.pth'
    _save_hara(src)
    checkpoint = torch.load(src, weights_only=True)
    sd = checkpoint['state_dict']
    sd['module.layer2.1.extra.weight'] = sd.pop('module.layer2.1.conv1.weight')
    sd['module.layer4.0.bn3.bias'] = torch.zeros(3)
    torch.save(checkpoint, src)
    with pytest.raises(ValueError) as info:
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))
    message = str(info.value)
    assert 'edited.pth does not match ResNeXt3D' in message
    assert '1 missing keys: layer2.1.conv1.weight' in message
    assert '1 unexpected keys: layer2.1.extra.weight' in message
    assert 'layer4.0.bn3.bias: (3,) != (512,)' in message
    assert not (tmp_path / 'out.pth').exists()


def test_error_arch_disagrees_with_weights(tmp_path):
    src = tmp_path / 'liar.pth'
    _save_hara(src, arch='resnext-101')
    with pytest.raises(ValueError, match=r'liar.pth.*\n.*missing keys: '
                       r'layer3\.6\.'):
        convert_hara_checkpoint(str(src), str(tmp_path / 'out.pth'))


def test_error_keep_fc_without_fc_and_bad_prefix(tmp_path):
    src = tmp_path / 'nofc.pth'
    _save_hara(src, num_classes=None)
    with pytest.raises(ValueError, match="nofc.pth: keep_fc.*'fc.weight'"):
        convert_hara_checkpoint(
            str(src), str(tmp_path / 'out.pth'), keep_fc=True)
    with pytest.raises(ValueError, match="prefix must be '' or end with"):
        convert_hara_checkpoint(
            str(src), str(tmp_path / 'out.pth'), prefix='backbone')
