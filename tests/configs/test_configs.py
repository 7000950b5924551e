"""Every config in configs/ (except _base_) builds and runs: one real
training step and one test step, on batches its own dataloaders make from
small generated videos with its own pipelines.

Each config is loaded with mmengine, pointed at the generated data, kept
offline (no pretrained downloads, no teacher checkpoint: a randomly
initialised teacher; feature-bank configs read a generated bank), and its
input sizes shrunk; the networks are the configs' own. Every HalluciNet
config also trains a step on labelled plus unlabelled videos
(``--unlabelled``). New configs are
picked up by the glob (except folders with a sweep of their own, see
SWEPT_ELSEWHERE). A config that resolves to exactly the same settings as
one before it (an alias) is checked for that and not run twice.
"""
import functools
import glob
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from hallucinet_plugin.datasets.unlabelled import use_unlabelled
from hallucinet_plugin.utils import get_pred_score
from tests.configs.config_utils import (
    complete_section,
    make_config_data,
    offline,
    point_at,
)
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# Config folders that a test of their own sweeps (with their own data).
SWEPT_ELSEWHERE = {
    'mtl_aqa': 'tests/configs/test_mtl_aqa_configs.py',
    # configs/monet/features: feature sequences, not videos.
    'features': 'tests/configs/test_monet_feature_configs.py',
}
CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                          recursive=True)
    if not {'_base_', *SWEPT_ELSEWHERE} & set(
        osp.relpath(path, REPO).split(osp.sep)))


@pytest.fixture(scope='module')
def config_data(tmp_path_factory):
    return make_config_data(str(tmp_path_factory.mktemp('config_data')))


def test_configs_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'hallucinet_vgg11_ucf.py' in names
    assert any(c.startswith(osp.join('configs', 'tsm')) for c in CONFIGS)
    assert any(c.startswith(osp.join('configs', 'trn')) for c in CONFIGS)


@functools.lru_cache(maxsize=None)
def resolved(config: str) -> str:
    """The settings a config resolves to, as comparable text."""
    return repr(Config.fromfile(osp.join(REPO, config)).to_dict())


def test_alias_is_the_main_config():
    assert resolved('configs/hallucinet_vgg11_ucf.py') == resolved(
        'configs/hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py')


def load(config: str, data: dict) -> Config:
    cfg = Config.fromfile(osp.join(REPO, config))
    # The configs' own plugin import (custom_imports), as tools/train.py
    # and mmaction2's would do it.
    assert cfg.get('custom_imports'), f'{config}: no custom_imports'
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    offline(cfg.model)
    complete_section(cfg)
    point_at(cfg, data)
    return cfg


def classifier_weight(head) -> torch.Tensor:
    """The last weight of a head (its classifier)."""
    return [p for n, p in head.named_parameters()
            if n.endswith('weight')][-1].detach().clone()


@pytest.mark.parametrize('config', CONFIGS)
def test_config_trains_and_tests(config, config_data):
    earlier = CONFIGS[:CONFIGS.index(config)]
    if any(resolved(c) == resolved(config) for c in earlier):
        return  # an alias: the identical config before it ran
    torch.manual_seed(0)
    cfg = load(config, config_data)
    model = MODELS.build(cfg.model)
    model.init_weights()
    hallucinates = cfg.model.get('hallu_head') is not None
    if cfg.model.get('teacher') is not None:
        assert all(not p.requires_grad for p in model.teacher.parameters())

    train_loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(train_loader))
    if hallucinates:
        # Online teacher clips or bank targets, whichever the config uses.
        target = 'teacher_feats' if cfg.model.get('teacher') is None \
            else 'teacher_imgs'
        assert target in batch['inputs'], sorted(batch['inputs'])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # A frozen appearance stream (MoNet's setting) trains only the
    # hallucinated stream's classifier.
    frozen = cfg.model.get('freeze_appearance', False)
    trained = model.hallu_cls_head if frozen else model.cls_head
    before = classifier_weight(trained)
    appearance = classifier_weight(model.cls_head)
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    assert torch.isfinite(log_vars['loss_cls'])
    if hallucinates:
        assert 'loss_hallu' in log_vars, sorted(log_vars)
        assert torch.isfinite(log_vars['loss_hallu'])
    else:
        assert 'loss_hallu' not in log_vars
    assert not torch.equal(before, classifier_weight(trained)), \
        'the step did not update the classifier'
    if frozen:
        assert torch.equal(appearance, classifier_weight(model.cls_head))

    test_loader = Runner.build_dataloader(cfg.test_dataloader, seed=0)
    batch = next(iter(test_loader))
    model.eval()
    with torch.no_grad():
        samples = model.test_step(batch)
    assert len(samples) == len(batch['data_samples']) == 2
    num_classes = cfg.model.cls_head.num_classes
    for sample in samples:
        score = get_pred_score(sample)
        assert score.shape == (num_classes, )
        assert torch.isfinite(score).all()
        if cfg.model.cls_head.get('average_clips') == 'prob':
            assert torch.allclose(score.sum(), torch.tensor(1.), atol=1e-4)


def hallucinates(config: str) -> bool:
    return Config.fromfile(osp.join(REPO, config)).model.get(
        'hallu_head') is not None


@pytest.mark.parametrize('config', [c for c in CONFIGS if hallucinates(c)])
def test_config_trains_on_unlabelled_videos(config, config_data, tmp_path):
    """``tools/train.py CONFIG --unlabelled LIST`` on every HalluciNet
    config: batches of labelled and unlabelled videos, one real training
    step; the classifier learns from the labelled ones, the hallucination
    from all (its unlabelled part logged apart)."""
    earlier = CONFIGS[:CONFIGS.index(config)]
    if any(resolved(c) == resolved(config) for c in earlier):
        return  # an alias: the identical config before it ran
    torch.manual_seed(0)
    cfg = load(config, config_data)
    unlabelled = tmp_path / 'unlabelled.txt'
    with open(config_data['ann_file']) as f:
        unlabelled.write_text(''.join(
            line.split()[0] + '\n' for line in f))
    if cfg.train_dataloader.dataset.get('data_prefix', {}).get('img'):
        with pytest.raises(ValueError, match='frame folders'):
            use_unlabelled(cfg, str(unlabelled))
        return
    if cfg.train_dataloader.sampler.type == 'MixedSourceSampler':
        # Written out already (test_config_trains_and_tests runs it).
        with pytest.raises(ValueError, match='already mixes'):
            use_unlabelled(cfg, str(unlabelled))
        return
    num_labelled = cfg.train_dataloader.batch_size
    use_unlabelled(cfg, str(unlabelled), ratio=1)
    model = MODELS.build(cfg.model)
    model.init_weights()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    flags = model.labelled_samples(batch['data_samples'])
    assert flags == [True] * num_labelled + [False] * num_labelled
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    for key in ('loss_cls', 'loss_hallu', 'hallu_unlabelled'):
        assert torch.isfinite(log_vars[key]), key
