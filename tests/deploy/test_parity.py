"""One prediction path: on the same decoded videos, the scores that
``tools/test.py`` reports (the recognizer's ``predict``, via ``test_step``),
those of the deploy model (``tools/inference.py``, the benchmark) and those
of the exported ONNX model in onnxruntime agree, for every config in
configs/ whose model the deploy path runs.

Each config is kept offline and pointed at small generated videos with
the config tests' helpers (tests/configs/config_utils.py: the input sizes
shrink, the networks are the configs' own, randomly initialised), except
that VGG's 4096-wide fc6 (103M weights, most of its build and forward
time) gets a narrow middle (timm's ``mlp_ratio``; its output stays 4096).
The classifiers get larger random weights, so that the probabilities are
far from uniform and a stream or a view left out shows. A config whose
student model and test pipeline equal an earlier config's is checked for
that and not run twice. ONNX export runs on :data:`ONNX_CONFIGS`.
"""
import functools
import glob
import math
import os.path as osp

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from hallucinet_plugin.deploy.deploy_model import DeployModel, build_student
from hallucinet_plugin.deploy.frames import load_frames
from hallucinet_plugin.deploy.onnx_export import export_module, onnx_session
from hallucinet_plugin.deploy.spec import (
    get_test_pipeline,
    student_input_spec,
)
from hallucinet_plugin.utils import get_pred_score
from tests.configs.config_utils import make_config_data, offline, point_at
from tests.conftest import REPO

ATOL = 1e-4  # on probabilities

CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                          recursive=True)
    if '_base_' not in osp.relpath(path, REPO).split(osp.sep))

# Models the deploy path does not run: no 2D student of RGB frames.
NOT_STUDENTS = {
    'configs/demo/teacher_r3d-tiny_adam-6e_demo-16x32.py':
    'the demo 3D teacher (Recognizer3D of clips)',
    'configs/mtl_aqa/demo/teacher_r3d-tiny_adam-6e_dive-demo-16x32.py':
    'the dive demo 3D teacher (Recognizer3D of clips)',
    'configs/monet/tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py':
    "MoNet's flow teacher (a Recognizer2D of 10-channel optical flow)",
}
DIVE_REASON = ('DiveLSTMHead predicts dive properties and a quality score, '
               'not one class-score vector: the deploy path refuses it '
               '(test_dive_lstm_is_refused)')

# Exported to ONNX too: every fusion, 1 and 2 frames per segment, several
# segments, MoNet's late fusion (tiny demo students, cheap to export), and
# the MoNet late fusion of ResNet-50 TSM.
ONNX_CONFIGS = {
    'configs/demo/hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/monet-appearance_resnet10t_adam-10e_demo.py',
    'configs/demo/monet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/vanilla_resnet10t_adam-10e_demo.py',
    'configs/monet/monet_tsm-r50_flow-tsn-r50_adam-40e_ucf101.py',
}

# Settings of the model that the deploy path does not read.
_TRAINING_ONLY = ('teacher', 'teacher_ckpt', 'teacher_layer', 'teacher_pool',
                  'keep_teacher_in_ckpt', 'max_missing_teacher_keys',
                  'appearance_ckpt', 'freeze_appearance', 'train_cfg')


@functools.lru_cache(maxsize=None)
def raw_config(config: str) -> Config:
    return Config.fromfile(osp.join(REPO, config))


def head_type(config: str) -> str:
    return raw_config(config).model.get('cls_head', {}).get('type')


@functools.lru_cache(maxsize=None)
def deploy_key(config: str) -> str:
    """What the deploy path computes from: the student's settings and the
    test pipeline, as comparable text."""
    cfg = raw_config(config)
    model = cfg.model.to_dict()
    for key in _TRAINING_ONLY:
        model.pop(key, None)
    if model.get('hallu_head'):
        model['hallu_head'].pop('loss_hallu', None)
    return repr((model, get_test_pipeline(cfg)))


def params():
    for config in CONFIGS:
        reason = NOT_STUDENTS.get(config)
        if reason is None and head_type(config) == 'DiveLSTMHead':
            reason = DIVE_REASON
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        yield pytest.param(config, marks=marks, id=config)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Small inputs gain little from threads, and on a shared machine
    waiting for a descheduled thread costs more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def config_data(tmp_path_factory):
    return make_config_data(str(tmp_path_factory.mktemp('parity_data')))


def test_skips_are_few_and_named():
    assert set(NOT_STUDENTS) <= set(CONFIGS)
    assert len(NOT_STUDENTS) == 3
    dive = [c for c in CONFIGS if head_type(c) == 'DiveLSTMHead']
    # The LSTM head is the MTL-AQA dive/quality experiments' only.
    assert dive and all(c.startswith('configs/mtl_aqa/') for c in dive)
    runs = [c for c in CONFIGS if c not in NOT_STUDENTS and c not in dive]
    fusions = {raw_config(c).model.get('fusion', 'concat') for c in runs}
    assert fusions == {'concat', 'direct', 'none', 'late'}
    assert {raw_config(c).model.get('frames_per_segment', 1)
            for c in runs} == {1, 2}
    assert len(runs) >= 20


def load(config: str, data: dict) -> Config:
    cfg = Config.fromfile(osp.join(REPO, config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    offline(cfg.model)
    point_at(cfg, data)
    backbone = cfg.model.backbone
    if backbone.type.startswith('timm.vgg'):
        # fc6 512x7x7 -> 64 -> fc7 4096 instead of 512x7x7 -> 4096 -> 4096.
        backbone.mlp_ratio = 1 / 64
    return cfg


def sharpen_classifiers(model: torch.nn.Module) -> None:
    """Classifier weights of std ``32 / sqrt(fan_in)``: confident, distinct
    probabilities instead of the near-uniform ones of ``init_std=0.01``."""
    for name in ('cls_head', 'hallu_cls_head'):
        head = getattr(model, name, None)
        if head is None:
            continue
        with torch.no_grad():
            for param in head.parameters():
                if param.dim() == 2:
                    param.normal_(0, 32 / math.sqrt(param.shape[1]))


def first_video(cfg: Config) -> str:
    """The test set's first video (the first sample of the batch)."""
    dataset = cfg.test_dataloader.dataset
    with open(dataset.ann_file) as f:
        name = f.readline().split()[0]
    return osp.join(dataset.data_prefix['video'], name)


@pytest.mark.parametrize('config', list(params()))
def test_predict_deploy_onnx_agree(config, config_data, tmp_path):
    earlier = CONFIGS[:CONFIGS.index(config)]
    twin = next((c for c in earlier if deploy_key(c) == deploy_key(config)),
                None)
    if twin is not None:
        return  # the same student and test pipeline as twin, checked there
    torch.manual_seed(0)
    cfg = load(config, config_data)
    model = build_student(cfg)
    sharpen_classifiers(model)
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader, seed=0)))

    # (a) tools/test.py: the test loop's test_step -> predict.
    with torch.no_grad():
        samples = model.test_step(batch)
    expected = torch.stack([get_pred_score(s) for s in samples])
    num_classes = cfg.model.cls_head.num_classes
    assert expected.shape == (2, num_classes)
    torch.testing.assert_close(expected.sum(1), torch.ones(2))
    assert expected.max() > 2 / num_classes, 'near-uniform probabilities'

    # (b) the deploy model, on pixels of the shape its spec announces.
    spec = student_input_spec(cfg)
    pixels = torch.stack(batch['inputs']).float()
    assert pixels.shape[1:3] == (spec['num_frames'], 3)
    if spec['size'] is not None:
        assert tuple(pixels.shape[-2:]) == spec['size']
    deploy = DeployModel(model, spec['num_frames']).eval()
    with torch.no_grad():
        scores = deploy(pixels)
    torch.testing.assert_close(scores, expected, atol=ATOL, rtol=0)

    # tools/inference.py decodes a video as the test loop does.
    if 'video' in cfg.test_dataloader.dataset.data_prefix:
        frames = load_frames(cfg, first_video(cfg))
        torch.testing.assert_close(torch.from_numpy(frames), pixels[0])

    # (c) the exported model in onnxruntime, batch axis dynamic.
    if config not in ONNX_CONFIGS:
        return
    onnx_file = export_module(deploy, pixels[:1], tmp_path / 'student.onnx')
    session = onnx_session(onnx_file, threads=1)
    (got, ) = session.run(None, {'imgs': pixels.numpy()})
    torch.testing.assert_close(
        torch.from_numpy(got), expected, atol=ATOL, rtol=0)


DIVE_CONFIG = ('configs/mtl_aqa/demo/'
               'vanilla-lstm_convnext-test_1x16x6-adam-10e_dive-demo.py')


def test_dive_lstm_is_refused():
    """The deploy path refuses DiveLSTMHead with a clear error; the
    recognizer's predict still writes the dive predictions."""
    assert head_type(DIVE_CONFIG) == 'DiveLSTMHead'
    cfg = raw_config(DIVE_CONFIG)
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = build_student(cfg)
    num_frames = 6  # 1x16x6: six student frames
    pixels = torch.rand(2, num_frames, 3, 32, 32) * 255
    with pytest.raises(TypeError, match='DiveLSTMHead .*class scores'):
        DeployModel(model, num_frames)(pixels)
    with torch.no_grad():
        samples = model.predict(pixels, [ActionDataSample() for _ in range(2)])
    properties = cfg.model.cls_head.properties
    for sample in samples:
        assert sorted(sample.pred_dive_scores) == sorted(properties)
        assert sample.pred_quality.shape == ()
