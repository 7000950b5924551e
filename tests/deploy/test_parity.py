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
from typing import Optional

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings
from torch import nn

from hallucinet_plugin.deploy.deploy_model import DeployModel, build_student
from hallucinet_plugin.deploy.frames import load_frames
from hallucinet_plugin.deploy.onnx_export import export_module, onnx_session
from hallucinet_plugin.deploy.spec import (
    get_test_pipeline,
    student_input_spec,
)
from hallucinet_plugin.utils import get_pred_score
from tests.configs.config_utils import (
    complete_section,
    make_config_data,
    offline,
    point_at,
)
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
    'configs/mtl_aqa/demo/teacher_r3d-tiny_adam-12e_dive-demo-16x32.py':
    'the dive demo 3D teacher (Recognizer3D of clips)',
    'configs/monet/tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py':
    "MoNet's flow teacher (a Recognizer2D of 10-channel optical flow)",
}
DIVE_REASON = ('DiveLSTMHead predicts dive properties and a quality score, '
               'not one class-score vector: the deploy path refuses it '
               '(test_dive_lstm_is_refused)')

# Exported to ONNX too (with their twins): every fusion, 1 and 2 frames per
# segment, several segments, MoNet's late fusion; tiny demo students, cheap
# to export (the ResNet-50 TSM MoNet alone takes 20 s).
ONNX_CONFIGS = {
    'configs/demo/hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/monet-appearance_resnet10t_adam-10e_demo.py',
    'configs/demo/monet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/demo/vanilla_resnet10t_adam-10e_demo.py',
}

# Settings of the model that the deploy path does not read.
_TRAINING_ONLY = ('teacher', 'appearance_ckpt', 'freeze_appearance',
                  'train_cfg')


def fusion(model: dict) -> str:
    """What the classifier sees: HalluciNet's ``fusion``, or ``'late'``
    for MoNet's two streams."""
    if model.get('type') == 'LateFusionHalluciNet':
        return 'late'
    return model.get('fusion', 'concat')


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


def twin(config: str):
    """An earlier config with the same :func:`deploy_key`, if any."""
    earlier = CONFIGS[:CONFIGS.index(config)]
    return next((c for c in earlier if deploy_key(c) == deploy_key(config)),
                None)


FEATURE_REASON = (
    'a FeatureSequenceRecognizer of precomputed feature sequences, no 2D '
    'student of RGB frames: predict_scores is its one prediction path '
    '(tests/models/recognizers/test_feature_sequence_recognizer.py)')


def params():
    for config in CONFIGS:
        reason = NOT_STUDENTS.get(config)
        if reason is None and raw_config(config).model.get(
                'type') == 'FeatureSequenceRecognizer':
            reason = FEATURE_REASON
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
    fusions = {fusion(raw_config(c).model) for c in runs}
    assert fusions == {'concat', 'direct', 'none', 'late'}
    assert {raw_config(c).model.get('frames_per_segment', 1)
            for c in runs} == {1, 2}
    assert len(runs) >= 20
    assert ONNX_CONFIGS <= set(runs)
    # Fusion 'none' with a hallucination head is the DiveLSTM configs' only.
    assert {fusion(raw_config(c).model)
            for c in ONNX_CONFIGS} == {'concat', 'direct', 'late'}


def load(config: str, data: dict) -> Config:
    cfg = Config.fromfile(osp.join(REPO, config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    offline(cfg.model)
    complete_section(cfg)
    point_at(cfg, data)
    backbone = cfg.model.backbone
    if backbone.type.startswith('timm.vgg'):
        # fc6 512x7x7 -> 64 -> fc7 4096 instead of 512x7x7 -> 4096 -> 4096.
        backbone.mlp_ratio = 1 / 64
    return cfg


def sharpen_classifiers(model: torch.nn.Module,
                        batch: Optional[dict] = None) -> None:
    """Classifier weights of std ``32 / sqrt(fan_in)``: confident, distinct
    probabilities instead of the near-uniform ones of ``init_std=0.01``.

    With ``batch``, the std is divided by the root mean square of each
    classifier's input on that batch (measured first): features of random
    backbones differ in scale by orders of magnitude (EfficientNet-B0's
    are small), so only this gives every student distinct probabilities.
    """
    layers = []
    for name in ('cls_head', 'hallu_cls_head'):
        head = getattr(model, name, None)
        if head is not None:
            layers += [m for m in head.modules() if isinstance(m, nn.Linear)]
    scale = {layer: 1.0 for layer in layers}
    if batch is not None:
        def measure(layer, args):
            scale[layer] = 1 / max(args[0].pow(2).mean().sqrt().item(), 1e-6)

        hooks = [layer.register_forward_pre_hook(measure) for layer in layers]
        with torch.no_grad():
            model.test_step(batch)
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for layer in layers:
            fan_in = layer.weight.shape[1]
            layer.weight.normal_(0, 32 / math.sqrt(fan_in) * scale[layer])


def first_video(cfg: Config) -> str:
    """The test set's first video (the first sample of the batch)."""
    dataset = cfg.test_dataloader.dataset
    with open(dataset.ann_file) as f:
        name = f.readline().split()[0]
    return osp.join(dataset.data_prefix['video'], name)


@pytest.mark.parametrize('config', list(params()))
def test_predict_deploy_onnx_agree(config, config_data, tmp_path):
    if twin(config) is not None:
        return  # the same student and test pipeline as twin, checked there
    torch.manual_seed(0)
    cfg = load(config, config_data)
    model = build_student(cfg)
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader, seed=0)))
    sharpen_classifiers(model, batch)

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
    if deploy_key(config) not in {deploy_key(c) for c in ONNX_CONFIGS}:
        return
    onnx_file = export_module(deploy, pixels[:1], tmp_path / 'student.onnx')
    session = onnx_session(onnx_file, threads=1)
    (got, ) = session.run(None, {'imgs': pixels.numpy()})
    torch.testing.assert_close(
        torch.from_numpy(got), expected, atol=ATOL, rtol=0)


DIVE_CONFIG = ('configs/mtl_aqa/demo/'
               'vanilla-lstm_resnet10t_1x16x6-adam-20e_dive-demo.py')


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


# Views (crops), late-fusion weights and clip averaging on a tiny timm
# student, through all three paths and the scores' meaning.
CASES = {
    'late-tsm-3crops-weights':
    dict(fuse='late', head='TSMHead', views=3, weights=(1., 3.)),
    'concat-tsm-3crops-score':
    dict(fuse='concat', head='TSMHead', views=3, average_clips='score'),
    # The eager split into max_testing_views chunks is not traced.
    'none-tsn-2f-split':
    dict(fuse='none', head='TSNHead', frames=2, max_testing_views=2),
}
SEGMENTS, DIM, HALLU_DIM, NUM_CLASSES = 2, 96, 16, 5


def tiny_model(fuse: str,
               head: str,
               views: int = 1,
               frames: int = 1,
               weights=(1., 1.),
               average_clips: str = 'prob',
               max_testing_views=None) -> torch.nn.Module:
    """A HalluciNet of timm's test_resnet (``DIM``-d) whose heads see
    ``SEGMENTS`` segments of ``frames`` frames in each of ``views``."""
    feats = frames * DIM
    extra = dict(num_segments=SEGMENTS) if head == 'TSMHead' else {}

    def head_cfg(in_channels):
        return dict(
            type=head,
            num_classes=NUM_CLASSES,
            in_channels=in_channels,
            average_clips=average_clips,
            **extra)

    cfg = dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        frames_per_segment=frames,
        hallu_head=dict(
            type='HallucinationHead', in_channels=feats,
            out_channels=HALLU_DIM),
        fusion='none' if fuse == 'late' else fuse,
        cls_head=head_cfg(feats + (HALLU_DIM if fuse == 'concat' else 0)),
        test_cfg=dict(max_testing_views=max_testing_views),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3))
    if fuse == 'late':
        cfg.pop('fusion')
        cfg.update(
            type='LateFusionHalluciNet',
            hallu_cls_head=head_cfg(HALLU_DIM), late_fusion_weights=weights)
    init_default_scope('mmaction')
    model = build_student(Config(dict(model=cfg)))
    sharpen_classifiers(model)
    return model


@pytest.mark.parametrize('case', list(CASES))
def test_views_weights_and_clip_averaging(case, tmp_path):
    settings = CASES[case]
    torch.manual_seed(0)
    model = tiny_model(**settings)
    views, frames = settings.get('views', 1), settings.get('frames', 1)
    num_frames = views * SEGMENTS * frames
    pixels = torch.randint(0, 256, (2, num_frames, 3, 32, 32),
                           dtype=torch.uint8)
    data = dict(
        inputs=list(pixels),
        data_samples=[ActionDataSample() for _ in range(2)])
    deploy = DeployModel(model, num_frames, with_hallu=True).eval()
    imgs = (pixels.float() - 127.5) / 64
    with torch.no_grad():
        samples = model.test_step(data)
        scores, hallu = deploy(pixels.float())
        x, kwargs = model.extract_feat(imgs, test_mode=True)
        if settings['fuse'] == 'late':
            weights = settings['weights']
            probs = [
                head(part, **kwargs).softmax(-1) for head, part in
                ((model.cls_head, x[0]), (model.hallu_cls_head, x[1]))
            ]
            per_view = (weights[0] * probs[0] + weights[1] * probs[1]) / \
                sum(weights)
        elif settings.get('average_clips') == 'score':
            per_view = model.cls_head(x, **kwargs)
        else:
            per_view = model.cls_head(x, **kwargs).softmax(-1)
    # The heads keep the crops apart (TSM), the prediction averages them.
    assert per_view.shape == (2 * views, NUM_CLASSES)
    meaning = per_view.reshape(2, views, NUM_CLASSES).mean(1)
    expected = torch.stack([get_pred_score(s) for s in samples])
    torch.testing.assert_close(expected, meaning)
    torch.testing.assert_close(scores, expected, atol=ATOL, rtol=0)
    assert hallu.shape == (2, views * SEGMENTS, HALLU_DIM)

    onnx_file = export_module(deploy, pixels[:1].float(),
                              tmp_path / 'tiny.onnx', ('scores', 'hallu'))
    session = onnx_session(onnx_file, threads=1)
    got = session.run(None, {'imgs': pixels.float().numpy()})
    torch.testing.assert_close(
        torch.from_numpy(got[0]), expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(
        torch.from_numpy(got[1]), hallu, atol=1e-3, rtol=0)
