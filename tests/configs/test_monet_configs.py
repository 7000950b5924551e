"""MoNet configs on real flow and a real classifier checkpoint.

The generic sweep (test_configs.py) builds and steps every config,
MoNet's included, offline: random flow-like images, no checkpoints. Here
the configs that the MoNet paths depend on run one training and one test
step with what they read in use: TV-L1 flow that tools/extract_flow.py
extracts from the generated videos (LoadFlowClips and the flow teacher's
RawframeDataset) and a checkpoint from which MoNetLoss loads its frozen
classifier; both streams must train and predictions be probabilities.
"""
import glob
import os
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from hallucinet_plugin.converters import extract_flow
from hallucinet_plugin.datasets.transforms.load_flow_clips import FLOW_TMPL
from hallucinet_plugin.feature_bank import use_teacher_bank
from hallucinet_plugin.utils import get_pred_score
from tests.configs.config_utils import (
    leaf_dataset,
    make_config_data,
    offline,
    shrink_pipeline,
    teacher_bank,
)
from tests.conftest import REPO

pytestmark = pytest.mark.slow

CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', 'monet', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'demo', 'monet*.py')))
FLOW_SIZE = 32


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    data = make_config_data(str(tmp_path_factory.mktemp('monet_data')))
    data['flow_root'] = osp.join(data['root'], 'flow')
    data['flow_list'] = osp.join(data['root'], 'flow_list.txt')
    extract_flow(
        data['ann_file'],
        data['flow_root'],
        data_prefix=data['video_dir'],
        out_list=data['flow_list'],
        progress=False)
    return data


def point_at(cfg, data, batch_size=2):
    """The generated videos, flow and bank; one process, small inputs."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        loader.update(
            batch_size=batch_size, num_workers=0, persistent_workers=False)
        dataset = leaf_dataset(loader['dataset'])
        if dataset['type'] == 'RawframeDataset':
            assert dataset['modality'] == 'Flow'
            assert dataset['filename_tmpl'] == FLOW_TMPL
            dataset['ann_file'] = data['flow_list']
            dataset['data_prefix'] = dict(img=data['flow_root'])
        else:
            dataset['ann_file'] = data['ann_file']
            dataset['data_prefix'] = dict(video=data['video_dir'])
        pipeline = shrink_pipeline(dataset['pipeline'])
        for t in pipeline:
            if t['type'] == 'LoadFlowClips':
                t.update(
                    flow_root=data['flow_root'],
                    data_prefix=data['video_dir'],
                    scale=(FLOW_SIZE, FLOW_SIZE))
            if t['type'] == 'LoadTeacherFeatures':
                sampler = next(
                    s for s in pipeline if s['type'] == 'HalluSampleFrames')
                t['store'] = teacher_bank(
                    data, cfg.model['hallu_head']['out_channels'],
                    sampler['clip_len'])
                t['data_prefix'] = data['video_dir']
        dataset['pipeline'] = pipeline


def save_classifier(cfg, path):
    """A recognizer-style checkpoint holding a random classifier under the
    config's prefix, like a trained teacher's; returns its weight."""
    loss = cfg.model['hallu_head']['loss_hallu']
    classifier = MODELS.build(loss['classifier'])
    state = {
        loss['classifier_prefix'] + k: v
        for k, v in classifier.state_dict().items()
    }
    state['backbone.conv1.weight'] = torch.zeros(1)  # not the classifier's
    torch.save(dict(state_dict=state), path)
    return classifier.fc_cls.weight.detach().clone()


def load(config, data, tmp_path, bank=False):
    cfg = Config.fromfile(osp.join(REPO, config))
    if bank:
        # tools/train.py --teacher-bank; point_at gives the store data.
        os.makedirs(tmp_path / 'bank.lmdb')
        use_teacher_bank(cfg, str(tmp_path / 'bank.lmdb'))
    import_modules_from_strings(**cfg.custom_imports)
    # Until the transforms __init__ exports it.
    import hallucinet_plugin.datasets.transforms.load_flow_clips  # noqa
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    loss = (cfg.model.get('hallu_head') or {}).get('loss_hallu', {})
    reads_classifier = bool(loss.get('classifier_ckpt'))
    offline(cfg.model)
    classifier = None
    if reads_classifier:
        ckpt = str(tmp_path / 'classifier.pth')
        classifier = save_classifier(cfg, ckpt)
        loss['classifier_ckpt'] = ckpt
    if cfg.model.get('appearance_ckpt'):
        # The trained appearance-only baseline the demo's MoNet starts from.
        appearance = MODELS.build(
            dict(cfg.model.to_dict(), appearance_ckpt=None))
        ckpt = str(tmp_path / 'appearance.pth')
        torch.save(dict(state_dict=appearance.state_dict()), ckpt)
        cfg.model.appearance_ckpt = ckpt
    point_at(cfg, data)
    return cfg, classifier


def test_configs_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py' in names
    assert 'monet_resnet10t_r3d-tiny_adam-10e_demo.py' in names
    assert len(CONFIGS) == 7


def test_paper_settings():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'monet',
                 'monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py'))
    head = cfg.model.hallu_head
    assert (head.in_channels, head.out_channels, head.num_layers,
            head.act) == (2048, 2048, 5, 'tanh')
    assert head.loss_hallu.alpha == 10
    assert head.loss_hallu.classifier_ckpt == cfg.model.teacher.checkpoint
    assert cfg.model.teacher.model.backbone.in_channels == 10
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.param_scheduler[0].milestones == [15, 30]
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.train_dataloader.dataset.pipeline[1].num_segments == 8


def test_demo_monet_starts_from_the_appearance_baseline():
    """The paper's setting on the demo: the hallucination learns on the
    fixed appearance stream of the appearance-only baseline."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'demo',
                 'monet_resnet10t_r3d-tiny_adam-10e_demo.py'))
    base = Config.fromfile(
        osp.join(REPO, 'configs', 'demo',
                 'monet-appearance_resnet10t_adam-10e_demo.py'))
    assert cfg.model.freeze_appearance
    assert 'monet-appearance' in cfg.model.appearance_ckpt
    assert cfg.model.backbone == base.model.backbone
    assert cfg.model.cls_head == base.model.cls_head
    # The same segments (the baseline's sampler has no teacher clip).
    sampler = dict(base.train_dataloader.dataset.pipeline[1])
    assert sampler.pop('with_teacher') is False
    assert cfg.train_dataloader.dataset.pipeline[1] == sampler


@pytest.mark.parametrize('config,bank', [
    ('configs/monet/monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py', False),
    ('configs/monet/tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py',
     False),
    ('configs/demo/monet_resnet10t_r3d-tiny_adam-10e_demo.py', True),
])
def test_config_trains_and_tests(config, bank, data, tmp_path):
    torch.manual_seed(0)
    cfg, classifier = load(config, data, tmp_path, bank)
    model = MODELS.build(cfg.model)
    model.init_weights()
    hallucinates = cfg.model.get('hallu_head') is not None
    if cfg.model.get('teacher') is not None:
        assert all(not p.requires_grad for p in model.teacher.parameters())
    if classifier is not None:
        frozen = model.hallu_head.loss_hallu.classifier
        torch.testing.assert_close(frozen.fc_cls.weight, classifier)
        assert not any(p.requires_grad for p in frozen.parameters())

    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    if hallucinates:
        target = 'teacher_feats' if cfg.model.get('teacher') is None \
            else 'teacher_imgs'
        assert target in batch['inputs'], sorted(batch['inputs'])
    if ((cfg.model.get('teacher') or {}).get('model')
            or {}).get('type') == 'Recognizer2D':
        # The flow stacks of the 8 segments, x/y interleaved.
        assert batch['inputs']['teacher_imgs'][0].shape == (
            8, 10, FLOW_SIZE, FLOW_SIZE)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    heads = [model.cls_head] + ([model.hallu_cls_head]
                                if cfg.model.type == 'LateFusionHalluciNet'
                                else [])
    before = [h.fc_cls.weight.detach().clone() for h in heads]
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    assert torch.isfinite(log_vars['loss_cls'])
    if hallucinates:
        for key in ('loss_hallu', 'loss_hallu_prob', 'loss_cls_hallu'):
            assert torch.isfinite(log_vars[key]), key
    else:
        assert 'loss_hallu' not in log_vars
    frozen = cfg.model.get('freeze_appearance', False)
    for head, weight in zip(heads, before):
        # A frozen appearance stream (MoNet's setting) stays as loaded.
        unchanged = frozen and head is model.cls_head
        assert torch.equal(weight, head.fc_cls.weight) == unchanged
    if classifier is not None:
        torch.testing.assert_close(
            model.hallu_head.loss_hallu.classifier.fc_cls.weight, classifier)

    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader, seed=0)))
    model.eval()
    with torch.no_grad():
        samples = model.test_step(batch)
    assert len(samples) == 2
    num_classes = cfg.model.cls_head.num_classes
    for sample in samples:
        score = get_pred_score(sample)
        assert score.shape == (num_classes, )
        torch.testing.assert_close(score.sum(), torch.tensor(1.))
