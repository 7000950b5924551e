"""Every config under configs/mtl_aqa: the paper's networks fit together,
the settings are the paper's, and each config trains one step and tests one
step on a generated mini MTL-AQA release (pickles in the released layout,
small event mp4s with several dives each).

Self-contained (tests/configs/test_configs.py sweeps the other configs).
The paper's networks (VGG11-bn, 3D-ResNeXt-101) are built on PyTorch's
``meta`` device, which checks how they connect without allocating or running
them; the training steps swap in a tiny timm student and a tiny 3D teacher
(one step of the real pair takes minutes on a CPU), keeping everything
else of each config: heads, fusion, pipelines, datasets, evaluators.
"""
import copy
import functools
import glob
import math
import os
import os.path as osp
from types import SimpleNamespace

import decord
import numpy as np
import pytest
import torch
from mmaction.registry import HOOKS, MODELS
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

import hallucinet_plugin  # noqa: F401

# Until the plugin's __init__ files export them.
import hallucinet_plugin.datasets.transforms.hallu_decord_init  # noqa
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
import hallucinet_plugin.engine.hooks.pretrained_student_hook  # noqa: F401
from demo.dive_demo_data import (
    ANNOTATION_FILE,
    SPLIT_FILES,
    TEACHER_DIR,
    TEACHER_LISTS,
    VIDEO_DIR,
    generate_dive_demo_dataset,
)
from hallucinet_plugin.datasets.mtl_aqa_dataset import load_plain_pickle
from hallucinet_plugin.feature_bank.geometry import window_starts
from tests.conftest import REPO, TINY_TEACHER_DIM, tiny_teacher
from tests.feature_bank.bank_utils import write_bank

CONFIG_DIR = osp.join(REPO, 'configs', 'mtl_aqa')
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))
MTL_AQA_PROPERTIES = dict(
    position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8)

# timm test_convnext's features; the tiny teacher's too.
TINY_DIM = TINY_TEACHER_DIM
TINY_STUDENT = dict(type='timm.test_convnext', pretrained=False)
TINY_TEACHER = tiny_teacher(num_classes=4)
BANK_STRIDE = 4

init_default_scope('mmaction')


def load(config: str) -> Config:
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.get('custom_imports'), f'{config}: no custom_imports'
    import_modules_from_strings(**cfg.custom_imports)
    return cfg


def kind(cfg: Config) -> str:
    """'dive' (MTL-AQA layout), 'video' (a video list)."""
    dataset = cfg.train_dataloader.dataset
    return 'dive' if dataset.type == 'MTLAQADataset' else 'video'


def task(cfg: Config) -> str:
    head = cfg.model.cls_head
    if not head.get('properties'):
        return 'score'
    return 'joint' if head.get('with_score', True) else 'dive'


def pipeline_step(pipeline, type_name):
    steps = [t for t in pipeline if t['type'] == type_name]
    assert len(steps) == 1, f'{type_name}: {len(steps)} in the pipeline'
    return steps[0]


# ------------------------------------------------------------- the data
@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """A mini MTL-AQA release: 3 events of 2 dives (64x64), and 12 teacher
    clips as a video list for the configs that read one."""
    root = str(tmp_path_factory.mktemp('mini_mtl_aqa'))
    generate_dive_demo_dataset(
        root,
        num_train_events=2,
        num_test_events=1,
        dives_per_event=2,
        num_teacher_clips=12,
        workers=1)
    return root


def test_mini_release_has_the_released_layout(release):
    annos = load_plain_pickle(osp.join(release, ANNOTATION_FILE))
    fields = {
        'primary_view', 'start_frame', 'end_frame', 'position',
        'difficulty', 'armstand', 'rotation_type', 'ss_no', 'tw_no',
        'final_score'
    }
    assert len(annos) == 6
    for key, record in annos.items():
        assert type(key) is tuple and all(type(k) is int for k in key)
        assert set(record) == fields
    for split, count in (('train', 4), ('test', 2)):
        keys = load_plain_pickle(osp.join(release, SPLIT_FILES[split]))
        assert isinstance(keys, list) and len(keys) == count
        assert all(key in annos for key in keys)
    events = {key[0] for key in annos}
    assert sorted(os.listdir(osp.join(release, VIDEO_DIR))) == [
        f'{e:02d}.mp4' for e in sorted(events)
    ]


_BANKS = {}


def teacher_bank(release: str, dim: int, clip_len: int) -> str:
    """A feature bank of random targets for the event videos, in the layout
    tools/extract_teacher_features.py writes."""
    path = osp.join(release, f'bank_{dim}_{clip_len}')
    if path in _BANKS:
        return path
    rng = np.random.default_rng(0)
    video_dir = osp.join(release, VIDEO_DIR)
    tracks = {}
    for key in sorted(os.listdir(video_dir)):
        total = len(decord.VideoReader(osp.join(video_dir, key)))
        windows = len(window_starts(total, clip_len, 1, BANK_STRIDE))
        tracks[key] = (total, rng.random((windows, dim), dtype=np.float32))
    write_bank(path, tracks, [video_dir], clip_len=clip_len,
               stride=BANK_STRIDE, out_of_bound_opt='repeat_last',
               dtype='float16')
    _BANKS[path] = True
    return path


# ---------------------------------------------------------- shrinking
def tiny_model(model: dict) -> dict:
    """The config's model with the tiny student and teacher, every channel
    count that depends on them adjusted; heads, fusion, losses kept."""
    model = copy.deepcopy(model)
    if model['type'] == 'Recognizer3D':  # the demo's teacher: already tiny
        return model
    model['backbone'] = dict(TINY_STUDENT)
    if model.get('teacher') is not None:
        model['teacher'] = dict(type='FrozenTeacher',
                                model=copy.deepcopy(TINY_TEACHER))
    hallu = model.get('hallu_head')
    fusion = model.get('fusion', 'concat')
    if hallu is not None:
        hallu.update(in_channels=TINY_DIM, out_channels=TINY_DIM)
    if hallu is None or fusion in ('none', 'direct'):
        model['cls_head']['in_channels'] = TINY_DIM
    else:
        model['cls_head']['in_channels'] = 2 * TINY_DIM
    return model


def _small(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_small(v) for v in value)
    return round(value * 40 / 256) if isinstance(value,
                                                 int) and value > 64 else value


def tiny_pipeline(pipeline) -> list:
    """Paper-size resizes and crops scaled down (256 -> 40 px, 227 -> 35 px),
    teacher clips at 16 px; the demo's student sizes are kept."""
    out = []
    for t in copy.deepcopy(list(pipeline)):
        t = dict(t)
        if t['type'] == 'Resize':
            t['scale'] = _small(t['scale'])
        for key in ('size', 'crop_size'):
            if key in t:
                t[key] = _small(t[key])
        if t['type'] == 'HalluSplitViews' and t.get('teacher_scale'):
            t['teacher_scale'] = (16, 16)
        out.append(t)
    return out


def point_at(cfg: Config, release: str, model: dict) -> None:
    """Every dataloader at the mini release, one process, batches of 2."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        dataset = loader['dataset']
        if dataset['type'] == 'MTLAQADataset':
            dataset.update(
                ann_file=osp.join(release, ANNOTATION_FILE),
                split_file=osp.join(
                    release,
                    SPLIT_FILES['train' if split == 'train' else 'test']),
                data_prefix=dict(video=osp.join(release, VIDEO_DIR)))
        else:
            dataset.update(
                ann_file=osp.join(release, TEACHER_LISTS['train']),
                data_prefix=dict(video=osp.join(release, TEACHER_DIR)))
        dataset['pipeline'] = tiny_pipeline(dataset['pipeline'])
        for t in dataset['pipeline']:
            if t['type'] == 'LoadTeacherFeatures':
                t['store'] = teacher_bank(
                    release, model['hallu_head']['out_channels'],
                    t['clip_len'])
                t['data_prefix'] = osp.join(release, VIDEO_DIR)


@functools.lru_cache(maxsize=None)
def comparable(config: str) -> str:
    """A config's settings once shrunk, without its initialisation (hooks,
    imports, pre-trained weights), to find configs that train alike."""
    d = load(config).to_dict()
    for key in ('custom_hooks', 'custom_imports', 'pretrained_student',
                'work_dir'):
        d.pop(key, None)
    d['model'] = tiny_model(d['model'])
    return repr(d)


# ------------------------------------------------------------- checks
@pytest.mark.parametrize('config', CONFIGS)
def test_paper_networks_fit(config):
    """The config's own networks connect (channels, heads, teacher), built
    on the meta device."""
    cfg = load(config)
    model = copy.deepcopy(cfg.model.to_dict())
    if 'backbone' in model and 'pretrained' in model['backbone']:
        model['backbone']['pretrained'] = False
    if model.get('teacher') is not None:
        model['teacher']['checkpoint'] = None
    with torch.device('meta'):
        built = MODELS.build(model)
    if kind(cfg) != 'dive' or 'demo' in config:
        return
    # The paper's pair and head (MTL-AQA configs); building consumed
    # parts of ``model``, the config is intact.
    spec = cfg.model
    assert spec.backbone.type == 'timm.vgg11_bn'
    assert spec.cls_head.type == 'DiveLSTMHead'
    assert built.cls_head.in_channels == 4096
    assert spec.fusion == 'none'
    if spec.get('hallu_head') is not None:
        assert (built.hallu_head.in_channels,
                built.hallu_head.out_channels) == (4096, 2048)
        assert spec.hallu_head.loss_hallu.loss_weight == 50.0
        if spec.get('teacher') is not None:
            assert spec.teacher.model.backbone == dict(
                type='ResNeXt3D', depth=101, cardinality=32)


@pytest.mark.parametrize(
    'config', [c for c in CONFIGS if 'demo' not in c and 'stage1' not in c])
def test_paper_protocol(config):
    """Frames, labels, metrics and schedule as the paper's MTL-AQA set-up."""
    cfg = load(config)
    for split in ('train', 'test'):
        dataset = cfg.get(f'{split}_dataloader').dataset
        assert dataset.type == 'MTLAQADataset'
        assert osp.basename(dataset.ann_file) == 'final_annotations_dict.pkl'
        assert osp.basename(dataset.split_file) == \
            f'{split}_split_0.pkl'
        pipeline = dataset.pipeline
        sampler = pipeline_step(pipeline, 'HalluSparseSampleFrames')
        assert (sampler.window, sampler.stride, sampler.clip_len) == (96, 16,
                                                                      16)
        # After the video is opened: the sampler reads the dive's window.
        types = [t['type'] for t in pipeline]
        assert types[0].endswith('DecordInit')
        assert types[1] == 'HalluSparseSampleFrames'
        pack = pipeline_step(pipeline, 'PackActionInputs')
        assert {'dive_labels', 'score'} <= set(pack.meta_keys)
        online = cfg.model.get('teacher') is not None
        if split == 'test':
            assert sampler.with_teacher is False
        else:
            assert sampler.get('with_teacher', True) is online
        if task(cfg) != 'score':
            assert dataset.properties == MTL_AQA_PROPERTIES
            assert cfg.model.cls_head.properties == MTL_AQA_PROPERTIES
    metrics = {m['type'] for m in cfg.test_evaluator}
    expected = dict(
        dive={'DivePropertyAccuracy'},
        score={'SpearmanCorrelation'},
        joint={'DivePropertyAccuracy', 'SpearmanCorrelation'})[task(cfg)]
    assert metrics == expected
    assert cfg.train_cfg.max_epochs == 20
    assert cfg.optim_wrapper.optimizer == dict(
        type='Adam', lr=1e-4, weight_decay=0.0)
    (scheduler, ) = cfg.param_scheduler
    if task(cfg) == 'dive':
        assert scheduler['type'] == 'ConstantLR'
        assert scheduler['factor'] == 1.0
    else:
        assert scheduler['type'] == 'MultiStepLR'
        assert (scheduler['milestones'], scheduler['gamma']) == ([5, 10,
                                                                  15], 0.1)


def classifier_weights(model) -> torch.Tensor:
    return torch.cat([
        p.detach().flatten().clone()
        for n, p in model.cls_head.named_parameters()
    ])


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS)
def test_config_trains_and_tests(config, release):
    earlier = CONFIGS[:CONFIGS.index(config)]
    if any(comparable(c) == comparable(config) for c in earlier):
        # Trains exactly like a config before it (the Table 9 configs: only
        # the initialisation differs, see test_stage2_initialisation).
        return
    cfg = load(config)
    torch.manual_seed(0)
    model_cfg = tiny_model(cfg.model.to_dict())
    point_at(cfg, release, model_cfg)
    model = MODELS.build(model_cfg)

    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
    hallucinates = model_cfg.get('hallu_head') is not None
    inputs = batch['inputs']
    imgs = inputs['imgs'] if isinstance(inputs, dict) else inputs
    if hallucinates:
        target = 'teacher_imgs' if model_cfg.get('teacher') else \
            'teacher_feats'
        assert target in inputs, sorted(inputs)
    if kind(cfg) == 'dive':
        # 6 student frames per dive, one teacher clip (or target) each.
        assert imgs[0].shape[0] == 6
        if hallucinates:
            assert inputs[target][0].shape[0] == 6
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = classifier_weights(model)
    model.train()
    log_vars = model.train_step(batch, optim_wrapper)
    if kind(cfg) == 'dive':
        expected = set()
        if task(cfg) != 'score':
            props = cfg.model.cls_head.properties
            expected |= {f'loss_{name}' for name in props}
        if task(cfg) != 'dive':
            expected.add('loss_score')
        losses = {k for k in log_vars if k.startswith('loss_')}
        assert losses - {'loss_hallu'} == expected
    assert ('loss_hallu' in log_vars) is hallucinates
    assert all(torch.isfinite(v) for v in log_vars.values())
    assert not torch.equal(before, classifier_weights(model))

    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader, seed=0)))
    model.eval()
    with torch.no_grad():
        outputs = model.test_step(batch)
    assert len(outputs) == 2
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.process(data_samples=outputs, data_batch=batch)
    metrics = evaluator.evaluate(2)
    if kind(cfg) != 'dive':
        assert 0 <= metrics['acc/top1'] <= 1
        return
    if task(cfg) != 'score':
        for name in cfg.model.cls_head.properties:
            assert 0 <= metrics[f'acc/{name}'] <= 100
    if task(cfg) != 'dive':
        rho = metrics['aqa/spearman']
        assert math.isnan(rho) or -100 <= rho <= 100


# ------------------------------------------------ sparse frames of a dive
def dive_config():
    return load('configs/mtl_aqa/hallucinet-lstm_vgg11-bn_resnext101_'
                '1x16x6-adam-step5-20e_mtl-aqa-joint.py')


@pytest.mark.parametrize('split', ['train', 'test'])
def test_sampler_reads_each_dive_inside_its_event_video(split, release):
    """Every 16th frame from the dive's start_frame, in the event video; the
    feature bank finds the same clips at clip_starts + start_index."""
    from mmaction.registry import DATASETS
    cfg = dive_config()
    model_cfg = tiny_model(cfg.model.to_dict())
    point_at(cfg, release, model_cfg)
    dataset_cfg = copy.deepcopy(cfg.get(f'{split}_dataloader').dataset)
    pipeline = dataset_cfg.pipeline
    # Up to and with the decode: which frames, and their pixels.
    types = [t['type'] for t in pipeline]
    dataset_cfg.pipeline = pipeline[:types.index('DecordDecode') + 1]
    dataset = DATASETS.build(dataset_cfg)
    annos = load_plain_pickle(osp.join(release, ANNOTATION_FILE))
    video_dir = osp.join(release, VIDEO_DIR)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        start = annos[(info['event'], info['clip'])]['start_frame']
        results = dataset[i]
        expected = start + np.arange(0, 96, 16)
        np.testing.assert_array_equal(
            results['student_inds'], expected,
            err_msg=f'dive {info["video_id"]} starts at frame {start} of '
            'its event video')
        np.testing.assert_array_equal(
            np.asarray(results['clip_starts']) + results['start_index'],
            expected)
        reader = decord.VideoReader(
            osp.join(video_dir, f'{info["event"]:02d}.mp4'))
        truth = reader.get_batch(list(expected)).asnumpy()
        decoded = dict(zip(results['frame_inds'].tolist(), results['imgs']))
        np.testing.assert_array_equal(
            np.stack([decoded[int(f)] for f in expected]), truth)


# ------------------------------------------------- Table 9's stage 2
STAGE2 = [c for c in CONFIGS if '-pt_' in osp.basename(c)]
# The paper's (UCF101 -> MTL-AQA) and the diving demo's (the main demo's
# videos -> generated dives) grids, and each one's stage-1 configs.
GRIDS = {
    'ucf101': lambda pt: 'configs/mtl_aqa/pretrain/stage1_' + pt +
    '_vgg11-bn_' + ('resnext101_' if pt == 'hallucinet' else '') +
    'adam-30e_ucf101-static.py',
    'demo': lambda pt: 'configs/mtl_aqa/demo/pretrain/stage1_' + pt +
    '_resnet10t_' + ('r3d-tiny_' if pt == 'hallucinet' else '') +
    'adam-10e_demo.py',
}


def grid_of(config: str) -> str:
    return osp.basename(config).split('_')[0].split('-')[1]


@pytest.mark.parametrize('grid', list(GRIDS))
def test_table9_grid_is_complete(grid):
    cells = {
        tuple(osp.basename(c).split('_')[0:2])
        for c in STAGE2 if grid_of(c) == grid
    }
    assert cells == {(f'vanilla-{grid}-pt', 'vanilla-lstm'),
                     (f'vanilla-{grid}-pt', 'hallucinet-lstm'),
                     (f'hallucinet-{grid}-pt', 'vanilla-lstm'),
                     (f'hallucinet-{grid}-pt', 'hallucinet-lstm')}


@pytest.mark.parametrize('config', STAGE2)
def test_stage2_initialisation(config, tmp_path):
    """Stage 2 copies the stage-1 student backbone (and the hallucination
    head when both stages hallucinate) and nothing else."""
    cfg = load(config)
    (hook_cfg, ) = [
        h for h in cfg.custom_hooks if h['type'] == 'PretrainedStudentHook'
    ]
    # The runtime's own hooks are kept.
    runtime = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'default_runtime.py'))
    assert all(h in cfg.custom_hooks for h in runtime.get('custom_hooks', []))
    grid = grid_of(config)
    pt = osp.basename(config).split(f'-{grid}-pt_')[0]
    stage1 = load(GRIDS[grid](pt))
    assert hook_cfg['checkpoint'].startswith(stage1.work_dir + '/')
    epochs = stage1.train_cfg.max_epochs
    assert hook_cfg['checkpoint'].endswith(f'/epoch_{epochs}.pth')
    torch.manual_seed(1)
    source = MODELS.build(tiny_model(stage1.model.to_dict()))
    ckpt = str(tmp_path / 'epoch_30.pth')
    torch.save(dict(meta=dict(epoch=30), state_dict=source.state_dict()),
               ckpt)

    torch.manual_seed(2)
    model = MODELS.build(tiny_model(cfg.model.to_dict()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook = HOOKS.build(dict(hook_cfg, checkpoint=ckpt))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    hook.before_run(
        SimpleNamespace(model=model, optim_wrapper=optim_wrapper,
                        logger=None))

    copy_hallu = 'hallu_head.' in hook_cfg['prefixes']
    assert copy_hallu is (pt == 'hallucinet'
                          and model.hallu_head is not None)
    expected = {'backbone.'} | ({'hallu_head.'} if copy_hallu else set())
    src = source.state_dict()
    for key, value in model.state_dict().items():
        part = key.split('.')[0] + '.'
        if part in expected:
            assert torch.equal(value, src[key]), key
        else:
            assert torch.equal(value, before[key]), key
    # Different seeds: a copied part really changed.
    assert not torch.equal(before['backbone.stem.0.weight'],
                           src['backbone.stem.0.weight'])
    if source.hallu_head is not None and model.hallu_head is not None \
            and not copy_hallu:
        assert any(not torch.equal(before[k], src[k])
                   for k in before if k.startswith('hallu_head.'))


def test_feature_bank_of_event_videos(release, tmp_path):
    """tools/extract_teacher_features.py's function on the online dive
    config stores each event video once; the same config switched to the
    bank (tools/train.py --teacher-bank) finds every dive's clips in it by
    their frame in the event video."""
    from mmaction.registry import DATASETS

    from hallucinet_plugin.feature_bank.extraction import (
        extract_teacher_features,
    )
    from hallucinet_plugin.feature_bank.store import FeatureBank
    from hallucinet_plugin.feature_bank.switch import use_teacher_bank
    cfg = dive_config()
    model_cfg = tiny_model(cfg.model.to_dict())
    point_at(cfg, release, model_cfg)
    torch.manual_seed(0)
    teacher = MODELS.build(copy.deepcopy(model_cfg['teacher']['model']))
    model_cfg['teacher']['checkpoint'] = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()),
               model_cfg['teacher']['checkpoint'])
    cfg.model = model_cfg
    store = str(tmp_path / 'bank.lmdb')
    report = extract_teacher_features(
        cfg,
        out=store,
        splits=('train', ),
        stride=8,
        batch_size=32,
        workers=0,
        dtype='float32',
        device='cpu',
        progress=False)
    # Two training events, four dives: one entry per event video.
    assert report['complete'] and report['videos'] == 2
    assert sorted(FeatureBank(store).keys()) == ['01.mp4', '02.mp4']

    bank_cfg = dive_config()
    point_at(bank_cfg, release, tiny_model(bank_cfg.model.to_dict()))
    use_teacher_bank(bank_cfg, store)
    dataset_cfg = bank_cfg.train_dataloader.dataset
    types = [t['type'] for t in dataset_cfg.pipeline]
    dataset_cfg.pipeline = dataset_cfg.pipeline[:types.index(
        'LoadTeacherFeatures') + 1]
    dataset = DATASETS.build(dataset_cfg)
    annos = load_plain_pickle(osp.join(release, ANNOTATION_FILE))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        start = annos[(info['event'], info['clip'])]['start_frame']
        results = dataset[i]
        assert results['teacher_feats'].shape == (6, TINY_DIM)
        # The bank's window nearest to each clip: within stride / 2.
        offsets = results['teacher_clip_starts'] - (
            start + np.arange(0, 96, 16))
        assert np.abs(offsets).max() <= 4, offsets
