"""Every feature-sequence config (configs/monet/features/**) builds, trains
one step and tests one batch, with its own network, pipelines and
evaluator, on generated feature files of its sizes: per-video ``.npy``
streams for the demo and Kinetics configs (the demo's banks are read in
tests/demo/test_monet_feature_demo.py), YouTube-8M-style TFRecords for the
YouTube-8M configs. Checkpoints are left out (offline); which parts are
frozen and which train is checked per stage."""
import glob
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from tests.configs.config_utils import offline
from tests.conftest import REPO
from tests.datasets.feature_sequences import write_npy_streams, write_records

pytestmark = pytest.mark.slow

FOLDER = osp.join('configs', 'monet', 'features')
# Not a training config: how the demo's appearance store is extracted,
# run for real by the demo's test.
EXTRACTION = osp.join(FOLDER, 'demo', 'appearance-bank_resnet10t_demo.py')
CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, FOLDER, '**', '*.py'),
                          recursive=True)
    if osp.relpath(path, REPO) != EXTRACTION)
NUM_VIDEOS = 6


def test_every_set_up_has_its_four_stages():
    names = {osp.basename(c) for c in CONFIGS}
    for data in ('kinetics400-i3d-features', 'youtube8m-frame-features'):
        for kind, epochs in (('appearance', 40), ('two-stream', 40),
                             ('monet', 40), ('monet-ft', 20)):
            assert f'{kind}_nextvlad_adam-{epochs}e_{data}.py' in names
    # The demo's: the paper's schedule at half length.
    for classifier in ('linear', 'trn', 'netvlad', 'nextvlad'):
        for kind, epochs in (('appearance', 20), ('two-stream', 20),
                             ('monet', 20), ('monet-ft', 10)):
            assert (f'{kind}_{classifier}_adam-{epochs}e_demo-features.py'
                    in names)


def sizes(cfg):
    channels = cfg.model.get('stream_channels') or {}
    hallu = cfg.model.get('hallu_head') or {}
    appearance = channels.get('appearance') or hallu.get('in_channels')
    motion = channels.get('motion') or hallu.get('out_channels') or \
        cfg.get('motion_dim')
    return dict(appearance=appearance, motion=motion)


def point_at_data(cfg, root):
    """Generated features of the config's sizes, small batches, one
    process."""
    dims = sizes(cfg)
    num_classes = cfg.model.classifier['num_classes']
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        dataset = loader.dataset
        loader.update(batch_size=3, num_workers=0, persistent_workers=False)
        streams = dataset.streams
        if streams['appearance']['type'] == 'tfrecord':
            labels = [[i % num_classes, (i + 7) % num_classes]
                      for i in range(NUM_VIDEOS)]
            path = osp.join(root, 'frames.tfrecord')
            if not osp.exists(path):
                write_records(path, labels, [5 + i for i in range(NUM_VIDEOS)],
                              dims=(('rgb', dims['appearance']), ))
                write_npy_streams(
                    root, labels, dict(flow=dims['motion']),
                    [5 + i for i in range(NUM_VIDEOS)])
                for i in range(NUM_VIDEOS):
                    osp.os.rename(osp.join(root, 'flow', f'v{i}.npy'),
                                  osp.join(root, 'flow', f'yt{i}.npy'))
            streams['appearance']['files'] = path
            streams['motion'] = dict(type='npy',
                                     prefix=osp.join(root, 'flow'))
        else:
            data = write_npy_streams(
                root, [i % num_classes for i in range(NUM_VIDEOS)], dims)
            dataset.ann_file = data['ann_file']
            dataset.streams = data['streams']
    return cfg


@pytest.mark.parametrize('config', CONFIGS)
def test_feature_config_trains_and_tests(config, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    offline(cfg.model)
    frozen = set(cfg.model.get('frozen', ()))
    cfg.model.pop('stream_ckpts', None)
    point_at_data(cfg, str(tmp_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    assert all(torch.isfinite(v) for v in log_vars.values()), log_vars
    changed = {
        n.split('.')[0]
        for n, p in model.named_parameters()
        if not torch.equal(p, before[n])
    }
    parts = set(model.parts)
    # The loss's frozen classifier (MoNetLoss) sits inside hallu_head.
    assert changed == parts - frozen, (changed, parts, frozen)
    if 'hallu_head' in parts - frozen:
        assert 'loss_hallu' in log_vars
    test_loader = Runner.build_dataloader(cfg.test_dataloader, seed=0)
    test_batch = next(iter(test_loader))
    if model.motion_input == 'hallucinated':
        # Only the appearance stream is read at test time.
        assert set(test_batch['inputs']) == {'appearance'}
    model.eval()
    with torch.no_grad():
        outputs = model.test_step(test_batch)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.process(outputs, test_batch)
    metrics = evaluator.evaluate(len(outputs))
    assert metrics and all(0 <= v <= 1 for v in metrics.values()), metrics
