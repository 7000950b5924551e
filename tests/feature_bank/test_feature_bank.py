"""The teacher feature bank against the online teacher, on real videos."""
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import lmdb
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS, TRANSFORMS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
from hallucinet_plugin.feature_bank.bank_format import (
    SHARD_KEY,
    read_meta,
    shard_name,
    shard_of,
    write_meta,
)
from hallucinet_plugin.feature_bank.extraction import (
    collect_videos,
    extract_teacher_features,
)
from hallucinet_plugin.feature_bank.geometry import default_stride
from hallucinet_plugin.feature_bank.store import FeatureBank
from hallucinet_plugin.feature_bank.switch import (
    bank_settings,
    check_teacher_bank,
    use_teacher_bank,
)
from hallucinet_plugin.utils import set_gt_label
from tests.configs.config_utils import leaf_datasets
from tests.conftest import (
    REPO,
    TINY_TEACHER_DIM,
    make_video_dataset,
    moving_square_video,
    tiny_teacher,
    write_video,
)

init_default_scope('mmaction')

CLIP_LEN = 8
NUM_FRAMES = 20
TEACHER_SIZE = 24
TEACHER_DIM = TINY_TEACHER_DIM
STUDENT_DIM = 96  # timm test_resnet
TEACHER = tiny_teacher(num_classes=4)
DEMO = osp.join(REPO, 'configs', 'demo')
DEMO_ONLINE = {
    'hallucinet': 'hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py',
    'hallucinet-direct':
    'hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo.py',
    'hallucinet-2f': 'hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py',
}


def online_pipeline(num_segments=2, test_mode=False):
    return [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=CLIP_LEN,
            num_segments=num_segments,
            test_mode=test_mode),
        dict(type='DecordDecode'),
        dict(
            type='HalluSplitViews',
            teacher_scale=(TEACHER_SIZE, TEACHER_SIZE)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
    ]


def bank_pipeline(store, num_segments=2):
    return [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=CLIP_LEN,
            num_segments=num_segments,
            with_teacher=False),
        dict(type='LoadTeacherFeatures', store=store, clip_len=CLIP_LEN),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews', teacher_scale=None),
        dict(type='FormatShape', input_format='NCHW'),
        dict(
            type='PackActionInputs', collect_keys=('imgs', 'teacher_feats'))
    ]


def model_config(ckpt=None):
    model = dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        hallu_head=dict(
            type='HallucinationHead',
            in_channels=STUDENT_DIM,
            out_channels=TEACHER_DIM,
            loss_hallu=dict(type='HallucinationLoss', loss_weight=1.0)),
        cls_head=dict(
            type='TSNHead',
            num_classes=4,
            in_channels=STUDENT_DIM + TEACHER_DIM,
            consensus=dict(type='AvgConsensus', dim=1),
            dropout_ratio=0.0,
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            format_shape='NCHW',
            teacher=dict(mean=[120., 110., 100.], std=[60., 61., 62.])))
    if ckpt is not None:
        model.update(teacher=dict(type='FrozenTeacher',
                                  model=copy.deepcopy(TEACHER),
                                  checkpoint=ckpt))
    return model


def write_config(path, data, ckpt):
    cfg = Config(
        dict(
            default_scope='mmaction',
            model=model_config(ckpt),
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                dataset=dict(
                    type='VideoDataset',
                    ann_file=data['ann_file'],
                    data_prefix=dict(video=data['video_dir']),
                    pipeline=online_pipeline()))))
    cfg.dump(str(path))
    return str(path)


def save_teacher(path, seed):
    torch.manual_seed(seed)
    teacher = MODELS.build(TEACHER)
    # Non-trivial BN statistics, so normalisation matters.
    for module in teacher.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.)
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return str(path)


def make_data(root):
    """Four 20-frame videos and one shorter than a clip (5 frames)."""
    data = make_video_dataset(str(root), num_videos=4, num_frames=NUM_FRAMES)
    rng = np.random.default_rng(1)
    write_video(
        osp.join(data['video_dir'], 'short.mp4'),
        moving_square_video(2, 5, 32, rng))
    with open(data['ann_file'], 'a') as f:
        f.write('short.mp4 2\n')
    return data


META = 'meta.json'  # read_raw's key of the metadata


def read_raw(path):
    """Every entry of every shard (key -> bytes) and the metadata
    (:data:`META`)."""
    raw = {META: read_meta(path)}
    for index in range(raw[META]['shards']):
        folder = osp.join(path, shard_name(index))
        if not osp.isdir(folder):
            continue
        env = lmdb.open(folder, readonly=True, lock=False)
        try:
            with env.begin() as txn:
                raw.update((k, v) for k, v in txn.cursor().iternext()
                           if k != SHARD_KEY)
        finally:
            env.close()
    return raw


def meta_without_times(raw):
    meta = dict(raw[META], created=dict(raw[META]['created']))
    meta['created'].pop('time')
    for key in ('updated_at', 'sha256'):
        meta.pop(key)
    return meta


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('bank')
    data = make_data(root / 'data')
    ckpt = save_teacher(root / 'teacher.pth', seed=0)
    cfg = write_config(root / 'online.py', data, ckpt)
    stores = dict(
        # Every start a window, float32: compared with the online teacher.
        exact=extract_teacher_features(
            cfg,
            root / 'exact.lmdb',
            stride=1,
            dtype='float32',
            workers=0,
            progress=False)['store'],
        # Defaults (float16, stride 2 for 8-frame clips), two workers.
        default=extract_teacher_features(
            cfg, root / 'default.lmdb', batch_size=4, workers=2,
            progress=False)['store'])
    return dict(root=root, data=data, ckpt=ckpt, cfg=cfg, stores=stores)


def online_model(cfg_path):
    return MODELS.build(Config.fromfile(cfg_path).model)


def test_settings_from_config(setup):
    settings = bank_settings(setup['cfg'])
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


def test_settings_view_made_deterministic(setup):
    cfg = Config.fromfile(setup['cfg'])
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


def test_settings_need_the_online_config(setup):
    cfg = Config.fromfile(setup['cfg'])
    cfg.model.teacher = None
    with pytest.raises(ValueError, match='model.teacher is not set'):
        bank_settings(cfg)
    cfg = Config.fromfile(setup['cfg'])
    cfg.model.teacher.checkpoint = None
    with pytest.raises(ValueError, match='teacher.checkpoint is not set'):
        bank_settings(cfg)


def test_store_layout(setup):
    videos, prefixes = collect_videos(setup['cfg'])
    keys = [k for k, _ in videos]
    assert keys == [f'video_{i:03d}.mp4' for i in range(4)] + ['short.mp4']
    assert prefixes == [osp.normpath(setup['data']['video_dir'])]
    for name, stride in [('exact', 1), ('default', 2)]:
        bank = FeatureBank(setup['stores'][name])
        meta = bank.meta
        assert sorted(bank.keys()) == sorted(keys)
        windows = (NUM_FRAMES - CLIP_LEN) // stride + 1
        expected = {k: windows for k in keys[:4]}
        expected['short.mp4'] = 1
        assert {k: len(bank.get(k)[1]) for k in keys} == expected
        assert meta['videos'] == len(keys)
        assert meta['complete'] is True
        assert meta['dim'] == TEACHER_DIM
        assert meta['stride'] == stride
        assert meta['data_prefixes'] == prefixes
        with open(setup['ckpt'], 'rb') as f:
            assert meta['teacher_ckpt_sha256'] == hashlib.sha256(
                f.read()).hexdigest()
        total, feats = bank.get('video_000.mp4')
        assert total == NUM_FRAMES
        assert feats.shape == (windows, TEACHER_DIM)
        assert feats.dtype == np.float32
        bank.close()
    raw = read_raw(setup['stores']['default'])
    # 28-byte header, a CRC-32 per row, the header's CRC-32, float16 values.
    assert len(raw[b'video_000.mp4']) == 28 + 7 * 4 + 4 + 7 * TEACHER_DIM * 2
    assert meta['max_abs'] == max(
        np.abs(bank.get(k)[1]).max() for k in keys)


def test_extraction_matches_online_teacher(setup):
    """Every window of every video (the short one looped as the sampler
    loops it) equals HalluciNet.extract_teacher_feat on the online
    pipeline's clip."""
    model = online_model(setup['cfg'])
    exact = FeatureBank(setup['stores']['exact'])
    default = FeatureBank(setup['stores']['default'])
    data = setup['data']
    for key in exact.keys():
        total, bank = exact.get(key)
        starts = max(total - CLIP_LEN, 0) + 1
        # In test mode with one segment per start, the sampler's clips
        # start at 0, 1, ..., last: the online view of every window.
        pipeline = Compose(online_pipeline(starts, test_mode=True))
        sample = pipeline(
            dict(
                filename=osp.join(data['video_dir'], key),
                label=0,
                start_index=0,
                modality='RGB'))
        inputs = model.data_preprocessor(
            pseudo_collate([sample]), False)['inputs']
        online = model.teacher(inputs['teacher_imgs'])
        assert online.shape == bank.shape == (starts, TEACHER_DIM)
        assert online.abs().max() > 0.1
        np.testing.assert_allclose(bank, online.numpy(), rtol=1e-5, atol=1e-6)
        # float16 at stride 2: every other window, rounded.
        _, half = default.get(key)
        np.testing.assert_allclose(half, bank[::2], rtol=1e-3, atol=1e-6)
        assert not np.array_equal(half, bank[::2])
    exact.close()
    default.close()


def test_bank_training_loss_matches_online(setup):
    """Same weights, same sampled frames: the bank's target and loss_hallu
    equal the online teacher's."""
    online = online_model(setup['cfg'])
    bank_model = MODELS.build(model_config())
    assert bank_model.teacher is None
    bank_model.load_state_dict(online.state_dict(), strict=True)
    online.train()
    bank_model.train()

    data = setup['data']
    store = setup['stores']['exact']
    online_pipe = Compose(online_pipeline())
    bank_pipe = Compose(bank_pipeline(store))
    online_samples, bank_samples = [], []
    for i in range(3):
        info = dict(
            filename=osp.join(data['video_dir'], f'video_{i:03d}.mp4'),
            label=i,
            start_index=0,
            modality='RGB')
        np.random.seed(i)
        online_samples.append(online_pipe(dict(info)))
        np.random.seed(i)
        bank_samples.append(bank_pipe(dict(info)))
    for a, b in zip(online_samples, bank_samples):
        assert torch.equal(a['inputs']['imgs'], b['inputs']['imgs'])
        assert b['inputs']['teacher_feats'].shape == (2, TEACHER_DIM)
        assert b['inputs']['teacher_feats'].dtype == torch.float32

    online_data = online.data_preprocessor(pseudo_collate(online_samples),
                                           True)
    bank_data = bank_model.data_preprocessor(
        pseudo_collate(bank_samples), True)
    target = online.teacher_target(online_data['inputs'])
    torch.testing.assert_close(
        bank_model.teacher_target(bank_data['inputs']),
        target,
        rtol=1e-5,
        atol=1e-6)
    torch.manual_seed(0)
    online_losses = online(**online_data, mode='loss')
    torch.manual_seed(0)
    bank_losses = bank_model(**bank_data, mode='loss')
    assert online_losses['loss_hallu'] > 0
    torch.testing.assert_close(
        bank_losses['loss_hallu'],
        online_losses['loss_hallu'],
        rtol=1e-5,
        atol=1e-7)
    torch.testing.assert_close(bank_losses['loss_cls'],
                               online_losses['loss_cls'])


def test_refuses_a_store_of_other_settings(setup, tmp_path):
    store = setup['stores']['default']
    before = read_raw(store)
    other_ckpt = save_teacher(tmp_path / 'other.pth', seed=1)
    other_teacher = Config.fromfile(setup['cfg'])
    other_teacher.model.teacher.model.backbone.base_channels = 4
    cases = [
        (dict(stride=3), 'stride: store 2, requested 3'),
        (dict(dtype='float32'), 'dtype'),
        (dict(cfg=write_config(tmp_path / 'c.py', setup['data'],
                               other_ckpt)), 'teacher_ckpt_sha256'),
        (dict(cfg=other_teacher), 'teacher_config differs'),
    ]
    for kwargs, message in cases:
        kwargs.setdefault('cfg', setup['cfg'])
        with pytest.raises(ValueError, match=message) as error:
            extract_teacher_features(
                out=store, workers=0, progress=False, **kwargs)
        assert store in str(error.value)
    assert read_raw(store) == before


def test_bad_video_is_named_and_good_ones_kept(setup, tmp_path):
    data = dict(setup['data'], ann_file=str(tmp_path / 'list.txt'))
    with open(data['ann_file'], 'w') as f:
        f.write('video_000.mp4 0\ngone.mp4 1\n')
    cfg = write_config(tmp_path / 'c.py', data, setup['ckpt'])
    store = str(tmp_path / 'bank.lmdb')
    with pytest.raises(RuntimeError, match='gone.mp4'):
        extract_teacher_features(cfg, store, workers=0, progress=False)
    bank = FeatureBank(store)
    assert bank.keys() == ['video_000.mp4']
    assert bank.meta['complete'] is False
    bank.close()


def _count(store):
    """Committed videos, read like a second process would."""
    if not osp.isfile(osp.join(store, 'meta.json')):
        return 0
    bank = FeatureBank(store, lock=True)
    try:
        return len(bank.keys())
    finally:
        bank.close()


@pytest.mark.slow
def test_killed_extraction_resumes_to_an_identical_store(tmp_path):
    """kill -9 after 2 of 5 videos, resume with two torchrun ranks: same
    keys, same bytes, same metadata (but timestamps) as one clean run."""
    data = make_data(tmp_path / 'data')
    cfg = write_config(tmp_path / 'online.py', data,
                       save_teacher(tmp_path / 'teacher.pth', seed=2))
    # One commit per video, so that the kill lands between commits.
    args = ['--batch-size', '1', '--workers', '0', '--no-progress',
            '--commit-every', '1']
    # Byte-identical needs the same float arithmetic: the same batch size
    # and intra-op threads (1, as OMP_NUM_THREADS below), not the same
    # number of decoding workers.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = extract_teacher_features(
            cfg,
            tmp_path / 'reference.lmdb',
            batch_size=1,
            workers=2,
            progress=False)['store']
    finally:
        torch.set_num_threads(threads)

    # The CLI commits video_000 and video_001, then blocks opening
    # video_002, which is a FIFO with no writer: a deterministic point
    # with some but not all entries committed.
    video = osp.join(data['video_dir'], 'video_002.mp4')
    shutil.move(video, str(tmp_path / 'video_002.mp4'))
    os.mkfifo(video)
    store = str(tmp_path / 'resumed.lmdb')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    log = tmp_path / 'killed.log'
    with open(log, 'w') as f:
        proc = subprocess.Popen(
            [
                sys.executable, 'tools/extract_teacher_features.py', cfg,
                '--out', store, *args
            ],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while _count(store) < 2 and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, log.read_text()[-3000:]
        assert _count(store) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    os.remove(video)
    shutil.move(str(tmp_path / 'video_002.mp4'), video)

    partial, expected = read_raw(store), read_raw(reference)
    assert set(partial) == {META, b'video_000.mp4', b'video_001.mp4'}
    for key in partial:
        if key != META:
            assert partial[key] == expected[key]

    proc = subprocess.run(
        [
            sys.executable, '-m', 'torch.distributed.run', '--standalone',
            '--nproc-per-node', '2', 'tools/extract_teacher_features.py',
            cfg, '--out', store, '--launcher', 'pytorch', *args
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Rank r writes the shards r, r + 2, ... of the store's 8.
    assert 'rank 0/2] ' + store in proc.stdout
    done = {'video_000.mp4', 'video_001.mp4'}
    for rank in (0, 1):
        mine = [k.decode() for k in expected if k != META
                and shard_of(k, 8) % 2 == rank]
        skipped = len(set(mine) & done)
        assert re.search(
            rf'rank {rank}/2.* extracted {len(mine) - skipped} .*skipped '
            rf'{skipped} ', proc.stdout), proc.stdout
    resumed = read_raw(store)
    assert set(resumed) == set(expected)
    for key in expected:
        if key != META:
            assert resumed[key] == expected[key], key
    assert meta_without_times(resumed) == meta_without_times(expected)


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


def test_switch_refusals(setup, tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'missing\.lmdb.*extract_teacher_features'):
        use_teacher_bank(
            Config.fromfile(setup['cfg']), str(tmp_path / 'missing.lmdb'))
    bank_cfg = use_teacher_bank(
        Config.fromfile(setup['cfg']), setup['stores']['default'])
    with pytest.raises(ValueError, match='model.teacher is not set'):
        use_teacher_bank(bank_cfg, setup['stores']['default'])


def test_train_with_teacher_bank_flag(setup, tmp_path):
    """``tools/train.py CONFIG --teacher-bank STORE``, a real subprocess:
    trains from the bank without building the teacher."""
    cfg = Config.fromfile(setup['cfg'])
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
        '--teacher-bank', setup['stores']['default']
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
    assert dumped.teacher_bank == setup['stores']['default']


def _sampler(cfg):
    pipeline = cfg.train_dataloader.dataset.pipeline
    return next(t for t in pipeline if t['type'] == 'HalluSampleFrames')


def test_training_checks_the_store_it_reads(setup, tmp_path):
    """``--teacher-bank`` refuses, before training, a store of another
    teacher checkpoint, layer pooling, view normalisation or sampling, and
    an unfinished one; naming both sides."""
    store = setup['stores']['default']
    record = check_teacher_bank(Config.fromfile(setup['cfg']), store)
    with open(setup['ckpt'], 'rb') as f:
        assert record['teacher_ckpt_sha256'] == hashlib.sha256(
            f.read()).hexdigest()
    assert {'teacher_ckpt_sha256', 'teacher_config', 'teacher_pool', 'view',
            'out_of_bound_opt'} <= set(record['checked'])

    def refused(edit, pattern):
        cfg = Config.fromfile(setup['cfg'])
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
    cfg = Config.fromfile(setup['cfg'])
    cfg.model.teacher.checkpoint = str(tmp_path / 'gone.pth')
    assert 'not compared' in check_teacher_bank(
        cfg, store)['teacher_ckpt_sha256']

    unfinished = str(tmp_path / 'unfinished.lmdb')
    shutil.copytree(store, unfinished)
    write_meta(unfinished, dict(read_meta(unfinished), complete=False))
    with pytest.raises(ValueError, match=r'unfinished\.lmdb is incomplete'):
        check_teacher_bank(Config.fromfile(setup['cfg']), unfinished)


def test_train_tool_refuses_another_teachers_store(setup, tmp_path):
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), setup['cfg'], '--work-dir',
        str(tmp_path / 'work'), '--teacher-bank', setup['stores']['default'],
        '--cfg-options', 'model.teacher.pool=max'
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "teacher_pool: store 'avg', requested 'max'" in proc.stderr
    assert not osp.exists(str(tmp_path / 'work'))
