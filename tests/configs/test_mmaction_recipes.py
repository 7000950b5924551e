"""mmaction2's own TSM and TRN recipes, with only the additions of the
README's "Using it in your own mmaction2 configs", train with mmaction2's
own tools/train.py (the packaged one) as a real subprocess.

The recipes are loaded from mmaction2's installed ``.mim/configs``; the
README's additions are applied to them programmatically, then offline and
tiny overrides (no pretrained weights, ResNet-18 students, small inputs,
two generated videos, one epoch of one iteration, no validation).
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import mmaction
import pytest
from mmengine.config import Config

from tests.configs.config_utils import (
    leaf_dataset,
    make_config_data,
    offline,
    point_at,
)
from tests.conftest import REPO

pytestmark = pytest.mark.slow

MIM = osp.join(osp.dirname(mmaction.__file__), '.mim')
TRAIN = osp.join(MIM, 'tools', 'train.py')
RECIPES = {
    'tsm':
    'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
    'kinetics400-rgb.py',
    'trn':
    'recognition/trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
    'sthv1-rgb.py',
}
TEACHER_DIM = 2048


@pytest.fixture(scope='module')
def config_data(tmp_path_factory):
    return make_config_data(str(tmp_path_factory.mktemp('recipe_data')))


def add_hallucinet(cfg: Config) -> None:
    """The README's additions, and nothing else (in place)."""
    cfg.custom_imports = dict(
        imports=['hallucinet_plugin'], allow_failed_imports=False)
    model = cfg.model
    student_dim = model.cls_head.in_channels
    model.type = 'HalluciNet'
    model.teacher = dict(
        type='FrozenTeacher',
        model=dict(
            type='Recognizer3D',
            backbone=dict(type='ResNeXt3D', depth=101, cardinality=32),
            cls_head=dict(
                type='I3DHead', num_classes=101, in_channels=TEACHER_DIM)),
        checkpoint='checkpoints/resnext101_ucf101.pth')
    model.hallu_head = dict(
        type='HallucinationHead',
        in_channels=student_dim,
        out_channels=TEACHER_DIM,
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.))
    model.fusion = 'concat'
    model.cls_head.in_channels = student_dim + TEACHER_DIM
    model.data_preprocessor = dict(
        model.data_preprocessor,
        type='HalluciNetDataPreprocessor',
        teacher=dict(mean=[114.7748, 107.7354, 99.4750], std=[1., 1., 1.]))

    dataset = leaf_dataset(cfg.train_dataloader.dataset)
    pipeline = list(dataset.pipeline)
    i = [t['type'] for t in pipeline].index('SampleFrames')
    pipeline[i] = dict(
        type='HalluSampleFrames',
        clip_len=16,
        num_segments=pipeline[i]['num_clips'])
    i = [t['type'] for t in pipeline].index('FormatShape')
    pipeline.insert(i, dict(type='HalluSplitViews', teacher_scale=(112, 112)))
    pipeline[-1] = dict(
        type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
    dataset.pipeline = pipeline


def tiny(cfg: Config, data: dict, work_dir: str) -> None:
    """Offline and small: ResNet-18 student (512-d) without pretrained
    weights, no teacher checkpoint, the generated data with small inputs
    (two training videos: one iteration), one epoch, a log line per
    iteration."""
    model = cfg.model
    model.backbone.depth = 18
    model.hallu_head.in_channels = 512
    model.cls_head.in_channels = 512 + TEACHER_DIM
    offline(model)
    point_at(cfg, data, multi_segment_train_batch_size=2)
    dataset = leaf_dataset(cfg.train_dataloader.dataset)
    two = osp.join(work_dir, 'train_two.txt')
    with open(dataset.ann_file) as f:
        lines = f.read().splitlines()[:2]
    with open(two, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    dataset.ann_file = two
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    cfg.default_hooks.logger.interval = 1


@pytest.mark.parametrize('recipe', sorted(RECIPES))
def test_recipe_with_readme_additions_trains(recipe, config_data, tmp_path):
    cfg = Config.fromfile(osp.join(MIM, 'configs', RECIPES[recipe]))
    assert cfg.model.type == 'Recognizer2D'
    add_hallucinet(cfg)
    work_dir = str(tmp_path / 'work')
    os.makedirs(work_dir)
    tiny(cfg, config_data, work_dir)
    config = str(tmp_path / f'hallucinet_{recipe}.py')
    cfg.dump(config)

    # mmaction2's tool imports the plugin through custom_imports only.
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
    proc = subprocess.run(
        [sys.executable, TRAIN, config, '--work-dir', work_dir,
         '--no-validate'],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth')), os.listdir(work_dir)
    assert 'loss_hallu' in log
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        steps = [json.loads(line) for line in f]
    assert len(steps) == 1 and steps[0]['iter'] == 1
    assert steps[0]['loss_hallu'] > 0 and steps[0]['loss_cls'] > 0
