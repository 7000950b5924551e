"""ONNX export of the deploy path, checked against PyTorch in onnxruntime."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import onnxruntime as ort
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from hallucinet_plugin.deploy.deploy_model import DeployModel, build_student
from hallucinet_plugin.deploy.onnx_export import (
    DEFAULT_ATOL,
    export_onnx,
    onnx_metadata,
    onnx_session,
    verify_export,
    verify_onnx,
)
from hallucinet_plugin.deploy.spec import student_input_spec
from hallucinet_plugin.utils import get_pred_score
from tests.conftest import REPO, run_tool

NUM_CLASSES = 3
TEACHER_DIM = 16
SIZE = 32


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine
    waiting for a descheduled thread costs ten times the work; tools run as
    subprocesses inherit OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    old = os.environ.get('OMP_NUM_THREADS')
    torch.set_num_threads(1)
    os.environ['OMP_NUM_THREADS'] = '1'
    yield
    torch.set_num_threads(threads)
    if old is None:
        del os.environ['OMP_NUM_THREADS']
    else:
        os.environ['OMP_NUM_THREADS'] = old

# family -> (timm backbone, pooled pre-logits size)
STUDENTS = {
    'resnet': (dict(type='timm.test_resnet'), 96),
    'mobilenetv3': (dict(type='timm.mobilenetv3_small_050'), 1024),
    'convnext': (dict(type='timm.test_convnext'), 64),
    'vit': (dict(type='timm.test_vit', img_size=SIZE), 64),
}


def tiny_config(family='resnet', frames=1, hallu=True):
    """A HalluciNet config dict with a tiny timm student and a test
    pipeline that resizes to 32x32 (``frames`` student frames per
    segment)."""
    backbone, dim = STUDENTS[family]
    model = dict(
        type='HalluciNet',
        backbone=dict(backbone, pretrained=False),
        frames_per_segment=frames,
        cls_head=dict(
            type='TSNHead',
            num_classes=NUM_CLASSES,
            in_channels=frames * dim + (TEACHER_DIM if hallu else 0),
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375]))
    if hallu:
        model['hallu_head'] = dict(
            type='HallucinationHead',
            in_channels=frames * dim,
            out_channels=TEACHER_DIM)
    offsets = [0, 4][:frames]
    test_pipeline = [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=8,
            student_offsets=offsets,
            with_teacher=False,
            test_mode=True),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')
    ]
    return Config(dict(model=model, test_pipeline=test_pipeline))


@pytest.mark.parametrize('with_hallu', [False, True])
@pytest.mark.parametrize('family', list(STUDENTS))
def test_export_verify(family, with_hallu, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(family)
    deploy, out = export_onnx(cfg, 'none', tmp_path / 'student.onnx',
                              with_hallu)
    report = verify_export(cfg, deploy, out)
    assert set(report) == {'random batch 1', 'random batch 3',
                           'decoded frames'}
    names = ['scores', 'hallu'] if with_hallu else ['scores']
    for res in report.values():
        assert res['scores'] <= DEFAULT_ATOL['scores']
        assert ('hallu' in res) == with_hallu
        if with_hallu:
            assert res['hallu'] <= DEFAULT_ATOL['hallu']

    # Dynamic batch, one-frame layout (B, 3, H, W), probabilities.
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == names
    assert session.get_inputs()[0].shape[1:] == [3, SIZE, SIZE]
    for batch in (1, 3):
        pixels = np.random.default_rng(batch).uniform(
            0, 255, (batch, 3, SIZE, SIZE)).astype(np.float32)
        outputs = session.run(None, {'imgs': pixels})
        assert outputs[0].shape == (batch, NUM_CLASSES)
        np.testing.assert_allclose(outputs[0].sum(1), 1, atol=1e-5)
        if with_hallu:
            assert outputs[1].shape == (batch, 1, TEACHER_DIM)
            # The paper's head ends in ReLU.
            assert (outputs[1] >= 0).all()
        ref = deploy(torch.from_numpy(pixels))
        ref = ref[0] if with_hallu else ref
        np.testing.assert_allclose(
            outputs[0], ref.detach().numpy(), atol=DEFAULT_ATOL['scores'])


def test_export_two_frames_layout(tmp_path):
    """HalluciNet(2f): (B, F, 3, H, W) input, the metadata says so."""
    torch.manual_seed(0)
    cfg = tiny_config('resnet', frames=2)
    assert student_input_spec(cfg) == dict(
        num_frames=2, num_segments=1, size=(SIZE, SIZE))
    deploy, out = export_onnx(cfg, None, tmp_path / 's.onnx', True)
    report = verify_export(cfg, deploy, out)
    assert report['random batch 3']['shape'] == [3, 2, 3, SIZE, SIZE]
    session = onnx_session(out)
    meta = onnx_metadata(session)
    assert meta['layout'] == 'B,F,3,H,W'
    assert (meta['num_frames'], meta['height'], meta['width']) == ('2',
                                                                   '32', '32')
    assert json.loads(meta['outputs']) == ['scores', 'hallu']
    assert session.get_inputs()[0].shape[1:] == [2, 3, SIZE, SIZE]


def test_deploy_model_is_predict():
    """The deploy path gives mmaction2's prediction: the data
    preprocessor's normalisation and the head's average_clip included."""
    torch.manual_seed(0)
    cfg = tiny_config('resnet', frames=2)
    cfg.model.data_preprocessor.to_rgb = True
    model = build_student(cfg)
    deploy = DeployModel(model, num_frames=2, with_hallu=True)
    frames = torch.randint(0, 256, (2, 2, 3, SIZE, SIZE), dtype=torch.uint8)
    data = model.data_preprocessor(
        dict(
            inputs=list(frames),
            data_samples=[ActionDataSample(),
                          ActionDataSample()]), False)
    with torch.no_grad():
        preds = model(**data, mode='predict')
        scores, hallu = deploy(frames.float())
    expected = torch.stack([get_pred_score(p) for p in preds])
    torch.testing.assert_close(scores, expected)
    assert hallu.shape == (2, 1, TEACHER_DIM)


def test_verify_fails_on_mismatch(tmp_path):
    """A model that no longer matches its export fails with the diff."""
    torch.manual_seed(0)
    cfg = tiny_config('resnet')
    deploy, out = export_onnx(cfg, None, tmp_path / 's.onnx', True)
    with torch.no_grad():
        deploy.model.hallu_head.mlp[0].bias.add_(1.0)
    with pytest.raises(AssertionError, match='hallu max abs diff'):
        verify_onnx(deploy, out)


def test_checkpoint_loaded_and_checked(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config('resnet')
    model = build_student(cfg)
    with torch.no_grad():
        model.cls_head.fc_cls.bias.fill_(0.25)
    ckpt = tmp_path / 'student.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    loaded = build_student(cfg, ckpt)
    assert torch.equal(loaded.cls_head.fc_cls.bias,
                       torch.full((NUM_CLASSES, ), 0.25))
    # A checkpoint of another model is refused, naming the keys.
    other = build_student(tiny_config('resnet', hallu=False))
    torch.save(other.state_dict(), tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='other.pth does not fit .*'
                       'cls_head.fc_cls.weight'):
        build_student(cfg, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='no hallu_head'):
        DeployModel(other, 1, with_hallu=True)


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_tool(tmp_path, capsys):
    cfg = tiny_config('resnet')
    cfg.dump(str(tmp_path / 'tiny.py'))
    out = tmp_path / 'student.onnx'
    proc = run_tool('tools/export_onnx.py', str(tmp_path / 'tiny.py'),
                    'none', '--out', str(out), '--with-hallu', '--verify')
    assert osp.isfile(out)
    assert 'random batch 3 (3, 3, 32, 32): max abs diff' in proc.stdout
    assert 'decoded frames (1, 3, 32, 32)' in proc.stdout
    assert 'verification passed' in proc.stdout
    # A tolerance no output can meet: exit status 1 and the diff (the same
    # main() in-process, to spare a second interpreter start).
    tool = _load_tool('export_onnx')
    with pytest.raises(SystemExit) as exit_info:
        tool.main([
            str(tmp_path / 'tiny.py'), 'none', '--out',
            str(tmp_path / 'again.onnx'), '--verify', '--atol-scores', '-1'
        ])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert 'verification FAILED' in err
    assert 'scores max abs diff' in err
