"""``feature_bank/switch.py``: the bank's settings read from an online
config, the switch of a config to the bank (``--teacher-bank``) on every
HalluciNet config, and the checks of a store against the config."""
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch
from mmaction.registry import MODELS, TRANSFORMS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
from hallucinet_plugin.feature_bank.bank_format import read_meta, write_meta
from hallucinet_plugin.feature_bank.geometry import default_stride
from hallucinet_plugin.feature_bank.switch import (
    bank_settings,
    check_teacher_bank,
    use_teacher_bank,
)
from hallucinet_plugin.utils import set_gt_label
from tests.configs.config_utils import leaf_datasets
from tests.conftest import REPO
from tests.feature_bank.bank_utils import (
    CLIP_LEN,
    TEACHER,
    TEACHER_SIZE,
    online_pipeline,
    save_teacher,
)

init_default_scope('mmaction')

DEMO = osp.join(REPO, 'configs', 'demo')
DEMO_ONLINE = {
    'hallucinet': 'hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'hallucinet-direct':
    'hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo.py',
    'hallucinet-2f': 'hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py',
}


def test_settings_from_config(bank_setup):
    settings = bank_settings(bank_setup['cfg'])
    assert settings['clip_len'] == CLIP_LEN
    assert settings['frame_interval'] == 1
    assert settings['stride'] == default_stride(CLIP_LEN) == 2
    assert settings['out_of_bound_opt'] == 'loop'
    assert settings['view']['scale'] == [TEACHER_SIZE, TEACHER_SIZE]
    assert settings['view']['mean'] == [120., 110., 100.]
    assert settings['view']['std'] == [60., 61., 62.]
    assert settings['view']['transforms'] == []
    assert json.loads(settings['teacher_config']) == TEACHER

    demo = bank_settings(osp.join(DEMO, DEMO_ONLINE['hallucinet']))
    assert (demo['clip_len'], demo['stride']) == (16, 4)
    assert demo['view']['scale'] == [32, 32]
    assert demo['view']['mean'] == [127.5] * 3
    assert demo['teacher_ckpt'] == 'work_dirs/demo/teacher/teacher.pth'


def test_settings_view_made_deterministic(bank_setup):
    cfg = Config.fromfile(bank_setup['cfg'])
    pipeline = online_pipeline()
    pipeline[3:3] = [
        dict(type='Resize', scale=(-1, 40)),
        dict(type='RandomCrop', size=28),
        dict(type='Flip', flip_ratio=0.5)
    ]
    cfg.train_dataloader.dataset.pipeline = pipeline
    assert bank_settings(cfg)['view']['transforms'] == [
        dict(type='Resize', scale=[-1, 40]),
        dict(type='CenterCrop', crop_size=28)
    ]
    # MultiScaleCrop (TSN/TSM recipes): the centre crop of its size.
    pipeline[4] = dict(type='MultiScaleCrop', input_size=28)
    cfg.train_dataloader.dataset.pipeline = pipeline
    assert bank_settings(cfg)['view']['transforms'][1] == dict(
        type='CenterCrop', crop_size=28)
    pipeline[4] = dict(type='ColorJitter')
    cfg.train_dataloader.dataset.pipeline = pipeline
    with pytest.raises(ValueError, match='ColorJitter.*teacher_bank_view'):
        bank_settings(cfg)
    cfg.teacher_bank_view = [dict(type='CenterCrop', crop_size=30)]
    assert bank_settings(cfg)['view']['transforms'] == [
        dict(type='CenterCrop', crop_size=30)
    ]


def test_settings_need_the_online_config(bank_setup):
    cfg = Config.fromfile(bank_setup['cfg'])
    cfg.model.teacher = None
    with pytest.raises(ValueError, match='model.teacher is not set'):
        bank_settings(cfg)
    cfg = Config.fromfile(bank_setup['cfg'])
    cfg.model.teacher.checkpoint = None
    with pytest.raises(ValueError, match='teacher.checkpoint is not set'):
        bank_settings(cfg)


@pytest.mark.parametrize('name', sorted(DEMO_ONLINE))
def test_demo_configs_train_from_the_bank(name, tmp_path):
    """``tools/train.py CONFIG --teacher-bank STORE`` on each online demo
    config: the teacher's clips give way to the store's targets, the rest
    of the pipeline and the test pipeline stay."""
    online_name = DEMO_ONLINE[name]
    online = Config.fromfile(osp.join(DEMO, online_name))
    store = str(tmp_path / 'bank.lmdb')
    os.makedirs(store)
    cfg = use_teacher_bank(Config.fromfile(osp.join(DEMO, online_name)),
                           store)
    assert cfg.model.get('teacher') is None
    pipeline = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    sampler = pipeline['HalluSampleFrames']
    online_sampler = {
        t['type']: t
        for t in online.train_dataloader.dataset.pipeline
    }['HalluSampleFrames']
    assert sampler['with_teacher'] is False
    assert sampler['student_offsets'] == online_sampler['student_offsets']
    load = pipeline['LoadTeacherFeatures']
    assert load['store'] == store
    assert load['clip_len'] == bank_settings(online)['clip_len']
    assert load['data_prefix'] == \
        cfg.train_dataloader.dataset.data_prefix['video']
    assert 'teacher_feats' in pipeline['PackActionInputs']['collect_keys']
    assert 'HalluSplitViews' in pipeline
    assert cfg.val_dataloader.dataset.pipeline == \
        online.val_dataloader.dataset.pipeline

    model = MODELS.build(cfg.model)
    assert model.teacher is None
    frames = len(sampler['student_offsets'])
    inputs = dict(
        imgs=torch.randint(0, 255, (2, frames, 3, 32, 32),
                           dtype=torch.uint8),
        teacher_feats=torch.rand(2, 1, model.hallu_head.out_channels))
    samples = []
    for i in range(2):
        data_sample = ActionDataSample()
        set_gt_label(data_sample, i)
        samples.append(
            dict(
                inputs={k: v[i]
                        for k, v in inputs.items()},
                data_samples=data_sample))
    data = model.data_preprocessor(pseudo_collate(samples), True)
    assert data['inputs']['teacher_feats'].shape == (
        2, 1, model.hallu_head.out_channels)
    losses = model(**data, mode='loss')
    assert losses['loss_hallu'] > 0


def _hallucinet_configs():
    configs = []
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                 recursive=True)):
        if '_base_' in path:
            continue
        model = Config.fromfile(path).get('model') or {}
        if model.get('type') == 'HalluciNet' and model.get('teacher'):
            configs.append(osp.relpath(path, REPO))
    return configs


HALLUCINET_CONFIGS = _hallucinet_configs()


def test_every_hallucinet_config_is_found():
    # The paper set-up, its variants and the TSM/TRN recipes at least.
    names = {osp.basename(c) for c in HALLUCINET_CONFIGS}
    assert {
        'hallucinet_vgg11_ucf.py',
        'hallucinet_vgg11-bn_resnext101_adam-30e_hmdb51-static.py',
        'hallucinet-2f_vgg11-bn_resnext101_adam-30e_ucf101-static.py',
        'hallucinet-direct_vgg11-bn_resnext101_adam-30e_ucf101-static.py',
        'hallucinet_vgg11-bn_resnext101_adam-30e_yup++-static-camera.py',
        'hallucinet_tsm-r50_resnext101_8xb16-1x1x8-50e_kinetics400-rgb.py',
        'hallucinet_trn-r50_resnext101_8xb16-1x1x8-50e_sthv1-rgb.py',
    } <= names


@pytest.mark.parametrize('path', HALLUCINET_CONFIGS)
def test_switch_on_every_hallucinet_config(path, tmp_path):
    online = Config.fromfile(osp.join(REPO, path))
    first = leaf_datasets(online.train_dataloader.dataset)[0]
    if 'img' in first.data_prefix:
        # Frame folders (Something-Something): the bank decodes videos.
        with pytest.raises(ValueError, match=r'frame folders.*online'):
            use_teacher_bank(online, str(tmp_path))
        return
    if any(t['type'] == 'LoadFlowClips' for t in first.pipeline):
        # A flow teacher's input is not decoded RGB: no bank (yet).
        with pytest.raises(ValueError, match=r'LoadFlowClips.*online'):
            use_teacher_bank(online, str(tmp_path))
        return
    settings = bank_settings(online)
    cfg = use_teacher_bank(Config.fromfile(osp.join(REPO, path)),
                           str(tmp_path))
    assert cfg.model.teacher is None
    # Every dataset of the train set (labelled and unlabelled videos).
    for dataset in leaf_datasets(cfg.train_dataloader.dataset):
        pipeline = dataset.pipeline
        types = [t['type'] for t in pipeline]
        i = types.index('LoadTeacherFeatures')
        assert types[i - 1].startswith('Hallu') and 'Sample' in types[i - 1]
        assert pipeline[i - 1]['with_teacher'] is False
        assert pipeline[i]['store'] == str(tmp_path)
        assert pipeline[i]['clip_len'] == settings['clip_len']
        assert pipeline[i]['data_prefix'] == dataset.data_prefix['video']
        split = pipeline[types.index('HalluSplitViews')]
        assert split['teacher_scale'] is None
        assert 'teacher_feats' in pipeline[-1]['collect_keys']
        assert 'teacher_imgs' not in pipeline[-1]['collect_keys']
        # Every transform of the switched pipeline builds.
        init_default_scope('mmaction')
        for transform in pipeline:
            if transform['type'] != 'LoadTeacherFeatures':
                TRANSFORMS.build(copy.deepcopy(transform))


def test_switch_refusals(bank_setup, tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'missing\.lmdb.*extract_teacher_features'):
        use_teacher_bank(
            Config.fromfile(bank_setup['cfg']), str(tmp_path / 'missing.lmdb'))
    bank_cfg = use_teacher_bank(
        Config.fromfile(bank_setup['cfg']), bank_setup['stores']['default'])
    with pytest.raises(ValueError, match='model.teacher is not set'):
        use_teacher_bank(bank_cfg, bank_setup['stores']['default'])


def test_train_with_teacher_bank_flag(bank_setup, tmp_path):
    """``tools/train.py CONFIG --teacher-bank STORE``, a real subprocess:
    trains from the bank without building the teacher."""
    cfg = Config.fromfile(bank_setup['cfg'])
    cfg.merge_from_dict(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=2),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(
                    type='CheckpointHook', interval=2, by_epoch=False))))
    # The teacher checkpoint is gone: only the bank can give targets.
    cfg.model.teacher.checkpoint = str(tmp_path / 'deleted.pth')
    config = str(tmp_path / 'online.py')
    cfg.dump(config)
    work_dir = str(tmp_path / 'work')
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--teacher-bank', bank_setup['stores']['default']
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r'loss_hallu: \d', proc.stderr + proc.stdout)
    ckpt = torch.load(
        osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
        weights_only=False)
    assert not [k for k in ckpt['state_dict'] if k.startswith('teacher.')]
    dumped = Config.fromfile(osp.join(work_dir, 'online.py'))
    assert dumped.teacher_bank == bank_setup['stores']['default']


def _sampler(cfg):
    pipeline = cfg.train_dataloader.dataset.pipeline
    return next(t for t in pipeline if t['type'] == 'HalluSampleFrames')


def test_training_checks_the_store_it_reads(bank_setup, tmp_path):
    """``--teacher-bank`` refuses, before training, a store of another
    teacher checkpoint, layer pooling, view normalisation or sampling, and
    an unfinished one; naming both sides."""
    store = bank_setup['stores']['default']
    record = check_teacher_bank(Config.fromfile(bank_setup['cfg']), store)
    with open(bank_setup['ckpt'], 'rb') as f:
        assert record['teacher_ckpt_sha256'] == hashlib.sha256(
            f.read()).hexdigest()
    assert {'teacher_ckpt_sha256', 'teacher_config', 'teacher_pool', 'view',
            'out_of_bound_opt'} <= set(record['checked'])

    def refused(edit, pattern):
        cfg = Config.fromfile(bank_setup['cfg'])
        edit(cfg)
        with pytest.raises(ValueError, match=pattern):
            check_teacher_bank(cfg, store)

    other = save_teacher(tmp_path / 'other.pth', seed=1)
    refused(lambda c: c.model.teacher.update(checkpoint=other),
            r'(?s)default\.lmdb was made with other settings.*'
            r'teacher_ckpt_sha256: store')
    refused(lambda c: c.model.teacher.update(pool='max'),
            r"teacher_pool: store 'avg', requested 'max'")
    refused(lambda c: c.model.data_preprocessor.teacher.update(
        mean=[0., 0., 0.]), r'view: store')
    refused(lambda c: _sampler(c).update(out_of_bound_opt='repeat_last'),
            r"out_of_bound_opt: store 'loop', requested 'repeat_last'")

    # Without the teacher checkpoint, everything else is still compared.
    cfg = Config.fromfile(bank_setup['cfg'])
    cfg.model.teacher.checkpoint = str(tmp_path / 'gone.pth')
    assert 'not compared' in check_teacher_bank(
        cfg, store)['teacher_ckpt_sha256']

    unfinished = str(tmp_path / 'unfinished.lmdb')
    shutil.copytree(store, unfinished)
    write_meta(unfinished, dict(read_meta(unfinished), complete=False))
    with pytest.raises(ValueError, match=r'unfinished\.lmdb is incomplete'):
        check_teacher_bank(Config.fromfile(bank_setup['cfg']), unfinished)


def test_train_tool_refuses_another_teachers_store(bank_setup, tmp_path):
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), bank_setup['cfg'],
        '--work-dir', str(tmp_path / 'work'),
        '--teacher-bank', bank_setup['stores']['default'],
        '--cfg-options', 'model.teacher.pool=max'
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "teacher_pool: store 'avg', requested 'max'" in proc.stderr
    assert not osp.exists(str(tmp_path / 'work'))
