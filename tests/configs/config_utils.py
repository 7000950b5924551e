"""Helpers of the config tests: small real data (mp4 videos, the same
videos as RawframeDataset frame folders, flow frames, a teacher feature
bank) and the overrides that point a config at it and keep it offline and
small.

Not a conftest.py: pytest imports every conftest.py as the module
``conftest``, which would shadow ``tests/conftest.py`` for the test files
that import from it."""
import copy
import inspect
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np
from mmaction.registry import MODELS

from hallucinet_plugin.engine.hallucination import apply_hallucination
from hallucinet_plugin.feature_bank.geometry import window_starts
from tests.conftest import make_video_dataset
from tests.feature_bank.bank_utils import write_bank

# Small enough for paper-size networks on a CPU (see shrink_pipeline).
RESIZE = 40
TEACHER_SIZE = 32
BANK_STRIDE = 4


def make_config_data(root: str) -> Dict:
    """Four 24-frame 64x64 mp4 videos of four classes under ``root`` (sides
    a multiple of 32: decord 0.6 fails on 48x48 mp4v); their
    frames as RawframeDataset folders are made on demand (:func:`rawframes`).
    """
    data = make_video_dataset(root, num_videos=4, num_frames=24, size=64)
    data['rawframes'] = {}
    return data


def rawframes(data: Dict, filename_tmpl: str, start_index: int = 1) -> Dict:
    """The videos of ``data`` as frame folders named by ``filename_tmpl``,
    with a ``frame_dir total_frames label`` list (cached per template)."""
    key = (filename_tmpl, start_index)
    if key in data['rawframes']:
        return data['rawframes'][key]
    root = osp.join(data['root'], f'rawframes_{len(data["rawframes"])}')
    lines = []
    with open(data['ann_file']) as f:
        videos = [line.split() for line in f.read().splitlines()]
    for name, label in videos:
        frame_dir = osp.splitext(name)[0]
        os.makedirs(osp.join(root, frame_dir))
        reader = cv2.VideoCapture(osp.join(data['video_dir'], name))
        count = 0
        while True:
            ok, frame = reader.read()
            if not ok:
                break
            cv2.imwrite(
                osp.join(root, frame_dir,
                         filename_tmpl.format(count + start_index)), frame)
            count += 1
        reader.release()
        assert count == data['num_frames'], f'decoded {count} frames'
        lines.append(f'{frame_dir} {count} {label}')
    ann_file = osp.join(root, 'list.txt')
    with open(ann_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    data['rawframes'][key] = dict(root=root, ann_file=ann_file)
    return data['rawframes'][key]


def flow_frames(data: Dict, filename_tmpl: str = 'flow_{}_{:05d}.jpg',
                start_index: int = 1) -> Dict:
    """Optical-flow-like frames for the videos of ``data``: per video
    folder (the video's stem) the ``n - 1`` pairs
    ``filename_tmpl.format('x' | 'y', k)`` that n frames give, and a
    ``frame_dir num_flows label`` list (cached per template)."""
    key = ('flow', filename_tmpl, start_index)
    if key in data['rawframes']:
        return data['rawframes'][key]
    root = osp.join(data['root'], f'flow_{len(data["rawframes"])}')
    rng = np.random.default_rng(0)
    size, num_flows = data['size'], data['num_frames'] - 1
    lines = []
    with open(data['ann_file']) as f:
        videos = [line.split() for line in f.read().splitlines()]
    for name, label in videos:
        frame_dir = osp.splitext(name)[0]
        os.makedirs(osp.join(root, frame_dir))
        for k in range(start_index, start_index + num_flows):
            for direction in 'xy':
                cv2.imwrite(
                    osp.join(root, frame_dir,
                             filename_tmpl.format(direction, k)),
                    rng.integers(96, 160, (size, size), np.uint8))
        lines.append(f'{frame_dir} {num_flows} {label}')
    ann_file = osp.join(root, 'list.txt')
    with open(ann_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    data['rawframes'][key] = dict(root=root, ann_file=ann_file)
    return data['rawframes'][key]


def teacher_bank(data: Dict, dim: int, clip_len: int,
                 frame_interval: int = 1) -> str:
    """A feature bank of random ``dim``-d targets for the mp4 videos, in the
    layout tools/extract_teacher_features.py writes (cached)."""
    path = osp.join(data['root'], f'bank_{dim}_{clip_len}_{frame_interval}')
    if osp.isdir(path):
        return path
    rng = np.random.default_rng(0)
    windows = len(
        window_starts(data['num_frames'], clip_len, frame_interval,
                      BANK_STRIDE))
    tracks = {
        key: (data['num_frames'],
              rng.random((windows, dim), dtype=np.float32))
        for key in sorted(os.listdir(data['video_dir']))
    }
    write_bank(path, tracks, [data['video_dir']], clip_len=clip_len,
               frame_interval=frame_interval, stride=BANK_STRIDE,
               dtype='float16')
    return path


def _accepts(type_name, arg: str) -> bool:
    """Whether the registered class ``type_name`` takes ``arg``."""
    cls = MODELS.get(type_name) if isinstance(type_name, str) else None
    return cls is not None and arg in inspect.signature(cls).parameters


def offline(cfg):
    """No downloads and no teacher checkpoint: ``pretrained=True`` becomes
    False, a pretrained path or URL None (and ``pretrained2d`` False where
    the class has it: mmaction2's ResNetTSM and ResNet3d load 2D weights by
    default and fail without a path), ``Pretrained`` init_cfgs go,
    every ``*_ckpt`` (MoNet's ``classifier_ckpt``, ``appearance_ckpt``)
    and the ``checkpoint`` of a ``FrozenTeacher`` become None (nested
    dicts and lists, in place); a ``model.hallucination`` section gets
    ``random_teacher=True``."""
    if isinstance(cfg, dict):
        for key in list(cfg):
            value = cfg[key]
            if key == 'pretrained' and value is True:
                cfg[key] = False
            elif key == 'pretrained' and isinstance(value, str):
                cfg[key] = None
                if _accepts(cfg.get('type'), 'pretrained2d'):
                    cfg['pretrained2d'] = False
            elif key.endswith('_ckpt') or (
                    key == 'checkpoint'
                    and cfg.get('type') == 'FrozenTeacher'):
                cfg[key] = None
            elif key == 'init_cfg' and isinstance(value, dict) and \
                    value.get('type') == 'Pretrained':
                cfg[key] = None
            elif key == 'hallucination' and isinstance(value, dict):
                # A recipe's one-section hallucination: its teacher_ckpt
                # goes too, which the section allows only when told.
                offline(value)
                value['random_teacher'] = True
            else:
                offline(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            offline(value)
    return cfg


def _shrink(value):
    """Paper-size lengths (> 64 px) scaled by 40 / 256, so that a 256 px
    resize becomes 40 px and its 224 px crop 35 px (ThreeCrop's
    crop == short side stays equal); small sizes and -1 are kept."""
    if isinstance(value, (tuple, list)):
        return type(value)(_shrink(v) for v in value)
    if isinstance(value, int) and value > 64:
        return round(value * RESIZE / 256)
    return value


def shrink_pipeline(pipeline: List[Dict]) -> List[Dict]:
    """Smaller resizes, crops and teacher views (not the networks)."""
    out = []
    for t in copy.deepcopy(list(pipeline)):
        t = dict(t)
        if t['type'] == 'Resize':
            t['scale'] = _shrink(t['scale'])
        for key in ('size', 'crop_size', 'input_size'):
            if key in t:
                t[key] = _shrink(t[key])
        if t['type'] == 'HalluSplitViews':
            if t.get('teacher_scale', (112, 112)) is not None:
                t['teacher_scale'] = (TEACHER_SIZE, TEACHER_SIZE)
            t['student_scale'] = _shrink(t.get('student_scale'))
        out.append(t)
    return out


def leaf_datasets(dataset: Dict) -> List[Dict]:
    """The innermost dataset configs of wrappers (RepeatDataset, ...) and
    of a ConcatDataset (labelled and unlabelled videos)."""
    if 'pipeline' in dataset:
        return [dataset]
    inner = list(dataset.get('datasets') or []) + (
        [dataset['dataset']] if 'dataset' in dataset else [])
    return [d for ds in inner for d in leaf_datasets(ds)]


def leaf_dataset(dataset: Dict) -> Dict:
    """The (first) innermost dataset config."""
    return leaf_datasets(dataset)[0]


def segments(pipeline: List[Dict]) -> int:
    """Segments (or clips) per video a pipeline samples."""
    return max([
        t.get('num_segments', t.get('num_clips', 1)) for t in pipeline
        if 'Sample' in t['type']
    ] or [1])


def complete_section(cfg) -> None:
    """Apply a ``model.hallucination`` section to the whole config (model,
    train pipelines, hooks), as the plugin's tools do; configs without one
    are left as they are."""
    if cfg.model.get('hallucination') is not None:
        apply_hallucination(cfg, switch_bank=False)


def point_at(cfg,
             data: Dict,
             batch_size: int = 2,
             multi_segment_train_batch_size: int = 1) -> None:
    """Point every dataloader of ``cfg`` at the generated data, one process,
    small batches, small inputs; a feature bank where the pipeline reads
    one. Training batches of several segments per video (a teacher clip
    each) hold ``multi_segment_train_batch_size`` videos."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is None:
            continue
        datasets = leaf_datasets(loader['dataset'])
        size = batch_size
        if split == 'train' and segments(datasets[0]['pipeline']) > 1:
            size = multi_segment_train_batch_size
        loader.update(batch_size=size, num_workers=0, persistent_workers=False)
        sampler = loader.get('sampler') or {}
        if sampler.get('type') == 'MixedSourceSampler':
            # Labelled and unlabelled videos: as many of each.
            loader.batch_size = size * len(datasets)
            sampler.update(
                batch_size=size * len(datasets),
                source_ratio=[1] * len(datasets))
        for dataset in datasets:
            _point_dataset_at(cfg, dataset, data)


def _point_dataset_at(cfg, dataset: Dict, data: Dict) -> None:
    """One dataset config at the generated data, with small inputs; a
    feature bank where its pipeline reads one."""
    if dataset['type'] == 'RawframeDataset':
        make = flow_frames if dataset.get('modality') == 'Flow' \
            else rawframes
        frames = make(data, dataset.get('filename_tmpl',
                                        'img_{:05}.jpg'),
                      dataset.get('start_index', 1))
        dataset['ann_file'] = frames['ann_file']
        dataset['data_prefix'] = dict(img=frames['root'])
    else:
        dataset['ann_file'] = data['ann_file']
        dataset['data_prefix'] = dict(video=data['video_dir'])
    root = next(iter(dataset['data_prefix'].values()))
    pipeline = shrink_pipeline(dataset['pipeline'])
    for t in pipeline:
        if t['type'] == 'LoadFlowClips':
            t['flow_root'] = flow_frames(
                data, t.get('filename_tmpl', 'flow_{}_{:05d}.jpg'),
                t.get('start_index', 1))['root']
            t['data_prefix'] = root
        if t['type'] == 'LoadTeacherFeatures':
            sampler = next(
                s for s in pipeline if s['type'] == 'HalluSampleFrames')
            t['store'] = teacher_bank(
                data, cfg.model['hallu_head']['out_channels'],
                sampler.get('clip_len', 16),
                sampler.get('frame_interval', 1))
            t['data_prefix'] = root
    dataset['pipeline'] = pipeline
