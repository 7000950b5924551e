"""What the feature-bank tests share: the online set-up they extract
from (tiny teacher, tiny student, short videos) and banks written by hand.
"""
import copy
import os.path as osp

import lmdb
import numpy as np
import torch
from mmaction.registry import MODELS
from mmengine.config import Config

from hallucinet_plugin.feature_bank import FeatureBankWriter
from hallucinet_plugin.feature_bank.bank_format import (
    FORMAT,
    FORMAT_VERSION,
    SHARD_KEY,
    read_meta,
    shard_name,
)
from hallucinet_plugin.feature_bank.extraction import extract_teacher_features
from hallucinet_plugin.feature_bank.geometry import window_starts
from tests.conftest import (
    TINY_TEACHER_DIM,
    make_video_dataset,
    moving_square_video,
    tiny_teacher,
    write_video,
)

CLIP_LEN = 8
NUM_FRAMES = 20
TEACHER_SIZE = 24
TEACHER_DIM = TINY_TEACHER_DIM
STUDENT_DIM = 96  # timm test_resnet
TEACHER = tiny_teacher(num_classes=4)


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


def extract_setup(root) -> dict:
    """:func:`make_data`'s videos under ``root``, a teacher checkpoint, the
    online config and two stores extracted from it (the ``bank_setup``
    fixture of tests/conftest.py)."""
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
    return dict(data=data, ckpt=ckpt, cfg=cfg, stores=stores)


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


# ------------------------------------------------------ banks by hand
DIM = 6
PREFIX = '/data/videos'


def handmade_settings(clip_len: int = 8,
                      stride: int = 4,
                      frame_interval: int = 1,
                      out_of_bound_opt: str = 'loop',
                      dtype: str = 'float32') -> dict:
    """The settings record of a bank written by hand: the layout
    tools/extract_teacher_features.py writes, no teacher behind it."""
    return dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        teacher_config='{}',
        teacher_ckpt_sha256='0' * 64,
        teacher_layer=None,
        teacher_pool='avg',
        clip_len=clip_len,
        frame_interval=frame_interval,
        stride=stride,
        out_of_bound_opt=out_of_bound_opt,
        dtype=dtype,
        view={})


def write_bank(path, tracks, prefixes=(PREFIX, ), **settings) -> str:
    """A bank of hand-made tracks ``{key: (total_frames, (W, D) array)}``;
    ``settings``: :func:`handmade_settings`' arguments."""
    writer = FeatureBankWriter(str(path), handmade_settings(**settings))
    try:
        for key, (total, feats) in tracks.items():
            writer.put(key, total, feats)
        writer.finalize(list(tracks), list(prefixes))
    finally:
        writer.close()
    return str(path)


def ramp_track(total, stride=4, clip_len=8, offset=0.):
    """Row ``i`` is ``offset + i`` everywhere: the window is readable."""
    windows = len(window_starts(total, clip_len, 1, stride))
    rows = offset + np.arange(windows, dtype=np.float32)
    return total, np.repeat(rows[:, None], DIM, axis=1)
