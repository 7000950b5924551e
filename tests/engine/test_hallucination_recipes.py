"""Hallucination added to mmaction2's own packaged recipes by a child
config of a few lines, trained one step the way mmaction2 1.1.0's
``tools/train.py`` builds its runner (``Runner.from_cfg(cfg)``; 1.2's builds
``RUNNERS.build(cfg)`` when ``runner_type`` is set, also tested), online and
from the feature bank.

Only data paths, one iteration and ``pretrained=None`` (no network here) are
set from outside the child config.
"""
import os
import os.path as osp

import cv2
import mmaction
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.engine.hallucination import apply_hallucination
from tests.conftest import (
    REPO,
    make_video_dataset,
    moving_square_video,
    run_tool,
)

pytestmark = pytest.mark.slow

RECIPES = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs',
                   'recognition')
TEACHER = osp.join(REPO, 'configs', 'demo',
                   'teacher_r3d-tiny_adam-6e_demo-16x32.py')
# name -> (recipe under mmaction2's recognition configs, frame folders?)
STOCK = {
    'tsn': ('tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_'
            'kinetics400-rgb.py', False),
    'tsm': ('tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
            'kinetics400-rgb.py', False),
    'tsm-mobilenetv2': ('tsm/tsm_imagenet-pretrained-mobilenetv2_8xb16-'
                        '1x1x8-100e_kinetics400-rgb.py', False),
    'tsn-swin': ('tsn/custom_backbones/tsn_imagenet-pretrained-swin-'
                 'transformer_8xb32-1x1x3-100e_kinetics400-rgb.py', False),
    'trn': ('trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv1-rgb.py',
            True),
    'tanet': ('tanet/tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_'
              'sthv1-rgb.py', True),
}
# The whole child config a user writes (the README shows the same).
CHILD = """\
_base_ = '{recipe}'
custom_imports = dict(imports=['hallucinet_plugin'])
custom_hooks = [dict(type='HallucinationHook')]
model = dict(
    type='HalluciNet',
    hallucination=dict(
        teacher='{teacher}', teacher_ckpt='{ckpt}', loss_weight=50.,
        teacher_scale=(32, 32)))
"""


def write_frame_folders(root: str, num_videos: int = 2,
                        num_frames: int = 24) -> dict:
    """``root/<video>/00001.jpg ...`` and a rawframes list."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(num_videos):
        folder = osp.join(root, 'frames', f'clip_{i}')
        os.makedirs(folder, exist_ok=True)
        for t, frame in enumerate(moving_square_video(i % 4, num_frames, 32,
                                                      rng)):
            cv2.imwrite(osp.join(folder, f'{t + 1:05d}.jpg'), frame)
        lines.append(f'clip_{i} {num_frames} {i % 4}')
    ann = osp.join(root, 'frames.txt')
    with open(ann, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(ann_file=ann, prefix=osp.join(root, 'frames'))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('recipes'))
    init_default_scope('mmaction')
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(TEACHER).model)
    ckpt = osp.join(root, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    return dict(
        root=root,
        ckpt=ckpt,
        videos=make_video_dataset(osp.join(root, 'v'), num_videos=2),
        frames=write_frame_folders(osp.join(root, 'f')))


def child_config(setup, name: str, **extra) -> str:
    recipe, _ = STOCK[name]
    path = osp.join(setup['root'], f'{name}.py')
    text = CHILD.format(
        recipe=osp.join(RECIPES, recipe), teacher=TEACHER,
        ckpt=setup['ckpt'])
    for key, value in extra.items():
        text += f'{key} = {value!r}\n'
    with open(path, 'w') as f:
        f.write(text)
    return path


def data_options(setup, name: str, work_dir: str) -> dict:
    """Data paths, one iteration, no downloads: what a user would pass
    with ``--cfg-options`` (offline; TSM backbones also load torchvision
    weights unless ``pretrained2d=False``)."""
    frames = STOCK[name][1]
    data = setup['frames'] if frames else setup['videos']
    prefix = dict(img=data['prefix']) if frames else dict(
        video=data['video_dir'])
    return {
        'work_dir': work_dir,
        'train_dataloader.dataset.ann_file': data['ann_file'],
        'train_dataloader.dataset.data_prefix': prefix,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1,
        'val_cfg': None,
        'val_dataloader': None,
        'val_evaluator': None,
        'test_cfg': None,
        'test_dataloader': None,
        'test_evaluator': None,
        'default_hooks.checkpoint.interval': 100,
        'model.backbone.pretrained': None,
        'model.cls_head.num_classes': 4,
        **({
            'model.backbone.pretrained2d': False
        } if name.startswith('tsm') else {}),
    }


def mmaction_train(config: str, options: dict, runner_type: bool = False):
    """What mmaction2's tools/train.py does with a config and
    ``--cfg-options`` (1.1.0: ``Runner.from_cfg``; 1.2 with
    ``runner_type``: ``RUNNERS.build``), then one epoch (one iteration)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    if runner_type:
        cfg.runner_type = 'HalluciNetRunner'
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name', sorted(STOCK))
def test_child_config_trains_online(setup, tmp_path, name):
    config = child_config(setup, name)
    with open(config) as f:
        # custom_imports, runner_type and the model section: 8 lines.
        assert len(f.read().splitlines()) <= 9
    runner = mmaction_train(config, data_options(setup, name, str(tmp_path)))
    model = runner.model
    assert type(model).__name__ == 'HalluciNet'
    assert model.teacher is not None
    # Widths derived: the recipe's student plus the demo teacher's 64.
    student = Config.fromfile(config).model.cls_head.in_channels
    assert model.hallu_head.in_channels == student
    assert model.hallu_head.out_channels == 64
    assert model.cls_head.in_channels == student + 64
    # The teacher's normalisation is its own config's.
    teacher_norm = Config.fromfile(TEACHER).model.data_preprocessor
    np.testing.assert_allclose(
        model.data_preprocessor.teacher.mean.flatten().tolist(),
        teacher_norm.mean)
    losses = runner.message_hub.get_scalar('train/loss_hallu').data[0]
    assert len(losses) == 1 and np.isfinite(losses).all()
    # HallucinationHook is a WeightsOnlyCheckpointHook: torch's default
    # (weights_only) loading reads the checkpoint mmaction2's tools wrote.
    checkpoint = torch.load(osp.join(str(tmp_path), 'epoch_1.pth'))
    assert checkpoint['meta']['iter'] == 1


def test_runner_type_applies_the_section_up_front(setup, tmp_path):
    """mmaction2 >= 1.2's tools build ``RUNNERS.build(cfg)`` for
    ``runner_type='HalluciNetRunner'``: the dumped config is the completed
    one, and the hook has nothing left to do."""
    config = child_config(setup, 'tsm')
    runner = mmaction_train(config, data_options(setup, 'tsm', str(tmp_path)),
                            runner_type=True)
    assert type(runner).__name__ == 'HalluciNetRunner'
    dumped = Config.fromfile(osp.join(runner.work_dir, osp.basename(config)))
    assert 'hallucination' not in dumped.model
    assert dumped.model.type == 'HalluciNet'
    assert dumped.model.hallu_head.out_channels == 64
    types = [t['type'] for t in dumped.train_dataloader.dataset.pipeline]
    assert types[0:3] == ['DecordInit', 'HalluSampleFrames', 'DecordDecode']
    assert types.index('HalluSplitViews') == types.index('FormatShape') - 1


def test_a_relative_teacher_path_means_the_same_under_both_tools(
        setup, tmp_path, monkeypatch):
    """``teacher='../teachers/t.py'`` is read next to the config that says
    it, whether the plugin's tools apply the section up front or
    mmaction2 1.1.0's ``Runner.from_cfg`` builds HalluciNet from it, and
    whatever the working directory."""
    os.makedirs(tmp_path / 'teachers')
    os.makedirs(tmp_path / 'configs')
    with open(tmp_path / 'teachers' / 't.py', 'w') as f:
        f.write(f'_base_ = {TEACHER!r}\n')
    config = str(tmp_path / 'configs' / 'child.py')
    with open(config, 'w') as f:
        f.write(CHILD.format(recipe=osp.join(RECIPES, STOCK['tsn'][0]),
                             teacher='../teachers/t.py',
                             ckpt=setup['ckpt']))
    os.makedirs(tmp_path / 'a' / 'b')
    monkeypatch.chdir(tmp_path / 'a' / 'b')  # no ../teachers here
    options = data_options(setup, 'tsn', str(tmp_path / 'work'))
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    apply_hallucination(cfg)  # the plugin's tools
    assert cfg.model.hallu_head.out_channels == 64
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)  # mmaction2's tools/train.py
    assert runner.model.hallu_head.out_channels == 64
    assert runner.model.teacher is not None


@pytest.fixture(scope='module')
def tsn_bank(setup):
    """The feature bank of the TSN child config, built by the plugin's
    extractor from the child config itself."""
    config = child_config(setup, 'tsn')
    store = osp.join(setup['root'], 'tsn_bank.lmdb')
    videos = setup['videos']
    args = [
        '--cfg-options',
        f"train_dataloader.dataset.ann_file={videos['ann_file']}",
        f"train_dataloader.dataset.data_prefix.video={videos['video_dir']}",
        'model.backbone.pretrained=None'
    ]
    run_tool('tools/extract_teacher_features.py', config, '--out', store,
             '--dtype', 'float32', '--workers', '0', '--device', 'cpu',
             '--no-progress', *args)
    return config, store


def test_bank_from_mmaction_tools_with_cfg_options(setup, tsn_bank,
                                                   tmp_path):
    """``--cfg-options teacher_bank=STORE`` with mmaction2's own runner
    path: checked against the config, then trained from."""
    config, store = tsn_bank
    options = dict(data_options(setup, 'tsn', str(tmp_path)),
                   **{'model.hallucination.bank': store})
    runner = mmaction_train(config, options)
    assert runner.model.teacher is None
    pipeline = runner.train_dataloader.dataset.pipeline.transforms
    assert 'LoadTeacherFeatures' in [type(t).__name__ for t in pipeline]
    losses = runner.message_hub.get_scalar('train/loss_hallu').data[0]
    assert len(losses) == 1 and np.isfinite(losses).all()
    # The top-level key of the plugin's tools is not silently ignored.
    with pytest.raises(ValueError, match='model.hallucination.bank'):
        mmaction_train(config, dict(data_options(setup, 'tsn', str(
            tmp_path / 'top')), teacher_bank=store))
    # With runner_type (mmaction2 >= 1.2) the top-level key works too.
    runner = mmaction_train(config, dict(data_options(setup, 'tsn', str(
        tmp_path / 'rt')), teacher_bank=store), runner_type=True)
    assert runner.cfg.teacher_bank_check['store'] == store
    assert 'teacher_ckpt_sha256' in runner.cfg.teacher_bank_check['checked']
    # The same store for another teacher checkpoint: refused, both named.
    other = osp.join(setup['root'], 'other_teacher.pth')
    torch.manual_seed(1)
    init_default_scope('mmaction')
    teacher = MODELS.build(Config.fromfile(TEACHER).model)
    torch.save(dict(state_dict=teacher.state_dict()), other)
    with pytest.raises(ValueError, match='teacher_ckpt_sha256'):
        mmaction_train(config, dict(options, **{
            'model.hallucination.teacher_ckpt': other,
            'work_dir': str(tmp_path / 'other')}))


def test_frame_folders_with_the_bank_are_refused(setup, tmp_path):
    config = child_config(setup, 'trn')
    options = dict(data_options(setup, 'trn', str(tmp_path)),
                   **{'model.hallucination.bank': '/nonexistent.lmdb'})
    with pytest.raises(ValueError, match=r'frame folders.*online teacher'):
        mmaction_train(config, options)


def _section_cfg(setup, **changes) -> Config:
    cfg = Config.fromfile(child_config(setup, 'tsn'))
    cfg.merge_from_dict(data_options(setup, 'tsn', setup['root']))
    for key, value in changes.items():
        if value is None:
            cfg.model.hallucination.pop(key)
        else:
            cfg.model.hallucination[key] = value
    return cfg


@pytest.mark.parametrize('changes, error, words', [
    (dict(teacher_ckpt=None), ValueError, 'teacher_ckpt is not set'),
    (dict(teacher=dict(type='Recognizer3D', backbone=dict(
        type='ResNet3d', depth=18, pretrained=None, pretrained2d=False),
        cls_head=dict(type='I3DHead', num_classes=4, in_channels=512))),
     ValueError, "teacher view's normalisation is unknown"),
    (dict(lamda=5.), KeyError, r"unknown model.hallucination keys \['lamda'"),
    (dict(fusion='late'), ValueError, "fusion must be 'concat'"),
])
def test_silent_failures_are_errors(setup, changes, error, words):
    with pytest.raises(error, match=words):
        apply_hallucination(_section_cfg(setup, **changes))


def test_wrong_teacher_width_is_caught_when_built(setup):
    """teacher_dim is inferred; a wrong one is named, before any model is
    built."""
    cfg = _section_cfg(setup, teacher_dim=512)
    with pytest.raises(ValueError, match=r'model.hallucination.teacher_dim='
                       r'512 but the teacher gives 64 features per clip at '
                       r'16x32x32'):
        apply_hallucination(cfg)
    cfg = _section_cfg(setup)
    apply_hallucination(cfg)
    assert cfg.model.hallu_head.out_channels == 64
    assert cfg.model.teacher.clip_shape == (16, 32, 32)


def test_section_without_the_hook_is_an_error(setup, tmp_path):
    """Forgetting the hook under mmaction2's tools: the first iteration
    stops, naming it, instead of training without hallucination."""
    cfg = Config.fromfile(child_config(setup, 'tsn'))
    cfg.merge_from_dict(data_options(setup, 'tsn', str(tmp_path)))
    cfg.custom_hooks = []
    with pytest.raises(KeyError, match="type='HallucinationHook'"):
        Runner.from_cfg(cfg).train()


def test_plugin_tools_take_the_child_config(setup, tsn_bank, tmp_path):
    config, store = tsn_bank
    opts = data_options(setup, 'tsn', str(tmp_path))
    args = [
        'train_dataloader.dataset.ann_file=' + opts[
            'train_dataloader.dataset.ann_file'],
        'train_dataloader.dataset.data_prefix.video=' + opts[
            'train_dataloader.dataset.data_prefix']['video'],
        'train_dataloader.batch_size=2', 'train_cfg.max_epochs=1',
        'model.backbone.pretrained=None', 'model.cls_head.num_classes=4'
    ]
    run_tool('tools/train.py', config, '--work-dir', str(tmp_path),
             '--no-validate', '--teacher-bank', store, '--cfg-options',
             *args)
    dumped = Config.fromfile(osp.join(str(tmp_path), 'tsn.py'))
    assert dumped.model.type == 'HalluciNet' and dumped.model.teacher is None
    assert dumped.teacher_bank_check['store'] == store
