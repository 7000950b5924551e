"""Every recognition family of the installed mmaction2's packaged configs,
as a teacher (3D) or as a student recipe (2D), through the
``model.hallucination`` section a user writes.

A teacher family is shrunk only with ``teacher_cfg_options`` (what a user
would do) and checked end to end at a tiny size: its width inferred on the
meta device equals what the real teacher gives, one hallucination training
step, one feature bank extraction from mmaction2's TSN recipe with the
section, and the bank check that training from it does. A student
family either becomes HalluciNet or is refused up front naming the way
forward. A family that a new mmaction2 release adds fails here until it
has a row.
"""
import os
import os.path as osp

import mmaction
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.engine.hallucination import apply_hallucination
from hallucinet_plugin.feature_bank.extraction import extract_teacher_features
from hallucinet_plugin.feature_bank.store import FeatureBank
from hallucinet_plugin.models.recognizers.hallucination_section import (
    _has_tin_shift,
    apply_section,
)
from hallucinet_plugin.utils import set_gt_label
from tests.conftest import REPO, make_video_dataset

RECOGNITION = osp.join(
    osp.dirname(mmaction.__file__), '.mim', 'configs', 'recognition')

# family -> (a packaged config, teacher_cfg_options shrinking it, the
# teacher clip (T, H, W) it is given). Options only shrink: depth, width,
# and the clip geometry of the transformers, which fix theirs.
TEACHERS = {
    # C3D's flattened pool5 is out_dim: 2048 at 16x48x48 (8192 at 112 px).
    'c3d': ('c3d_sports1m-pretrained_8xb30-16x1x1-45e_ucf101-rgb.py', {
        'model.backbone.out_dim': 2048,
    }, (16, 48, 48)),
    'csn': ('ipcsn_r152_32x2x1-180e_kinetics400-rgb.py', {
        'model.backbone.depth': 50,
        'model.backbone.base_channels': 8,
    }, (4, 32, 32)),
    'i3d': ('i3d_imagenet-pretrained-r50-heavy_8xb8-32x2x1-100e_'
            'kinetics400-rgb.py', {
                'model.backbone.base_channels': 8,
            }, (4, 32, 32)),
    'mvit': ('mvit-base-p244_32x3x1_kinetics400-rgb.py', {
        'model.backbone.arch': dict(embed_dims=16, num_layers=2,
                                    num_heads=1, downscale_indices=[1]),
        'model.backbone.temporal_size': 4,
        'model.backbone.spatial_size': 32,
    }, (4, 32, 32)),
    'omnisource': ('slowonly_r50_8xb16-8x8x1-256e_imagenet-kinetics400-'
                   'rgb.py', {}, (4, 32, 32)),
    'r2plus1d': ('r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb.py', {
        'model.backbone.depth': 18,
        'model.backbone.base_channels': 8,
    }, (4, 32, 32)),
    'slowfast': ('slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py', {
        'model.backbone.slow_pathway.base_channels': 16,
        'model.backbone.fast_pathway.base_channels': 2,
    }, (8, 32, 32)),
    'slowonly': ('slowonly_r50_8xb16-4x16x1-256e_kinetics400-rgb.py', {
        'model.backbone.base_channels': 8,
    }, (4, 32, 32)),
    'swin': ('swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_'
             'kinetics400-rgb.py', {
                 'model.backbone.pretrained': None,
                 'model.backbone.pretrained2d': False,
                 'model.backbone.window_size': (2, 2, 2),
                 'model.backbone.arch': dict(
                     embed_dims=16, depths=(1, 1, 1, 1),
                     num_heads=(1, 1, 1, 1)),
             }, (4, 32, 32)),
    'timesformer': ('timesformer_divST_8xb8-8x32x1-15e_kinetics400-rgb.py', {
        'model.backbone.pretrained': None,
        'model.backbone.num_frames': 4,
        'model.backbone.img_size': 32,
        'model.backbone.num_transformer_layers': 1,
    }, (4, 32, 32)),
    'tpn': ('tpn-slowonly_r50_8xb8-8x8x1-150e_kinetics400-rgb.py', {
        'model.backbone.base_channels': 8,
    }, (4, 32, 32)),
    'uniformer': ('uniformer-small_imagenet1k-pre_16x4x1_kinetics400-'
                  'rgb.py', {
                      'model.backbone.depth': (1, 1, 1, 1),
                  }, (4, 32, 32)),
    'uniformerv2': ('uniformerv2-base-p16-res224_clip-kinetics710-pre_'
                    '8xb32-u8_kinetics400-rgb.py', {
                        'model.backbone.init_cfg': None,
                        'model.backbone.input_resolution': 32,
                        'model.backbone.t_size': 4,
                        'model.backbone.layers': 2,
                        'model.backbone.return_list': (1, ),
                        'model.backbone.n_layers': 1,
                        'model.backbone.mlp_dropout': (0.5, ),
                    }, (4, 32, 32)),
    'videomae': ('vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py', {
        'model.backbone.img_size': 32,
        'model.backbone.num_frames': 4,
        'model.backbone.depth': 1,
    }, (4, 32, 32)),
    'videomaev2': ('vit-small-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_'
                   'kinetics-400.py', {
                       'model.backbone.img_size': 32,
                       'model.backbone.num_frames': 4,
                       'model.backbone.depth': 1,
                   }, (4, 32, 32)),
    'x3d': ('x3d_s_13x6x1_facebook-kinetics400-rgb.py', {
        'model.backbone.gamma_w': 0.5,
        'model.backbone.gamma_d': 0.5,
    }, (4, 32, 32)),
}
# 2D recipe families: None when the section supports them, else the words
# of their refusal (which names the way forward).
STUDENTS = {
    'tsn': ('tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-'
            'rgb.py', None),
    'tsm': ('tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-'
            'rgb.py', None),
    'trn': ('trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv1-rgb.py',
            None),
    'tanet': ('tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py',
              None),
    'tin': ('tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb.py',
            None if _has_tin_shift() else 'needs the compiled tin_shift'),
    'c2d': ('c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py',
            'use the TSN recipe with the same backbone'),
}
# TPN is also a 2D recipe (TPN-TSM): a neck, refused naming the TSM recipe.
TPN_TSM = ('tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb.py',
           'TPN-TSM: the TSM recipe')
STUDENT = dict(
    type='Recognizer2D',
    backbone=dict(type='timm.resnet10t', pretrained=False),
    cls_head=dict(type='TSNHead', num_classes=4, in_channels=512),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[127.5] * 3, std=[64.] * 3))


def batch(clip_shape, n=2):
    """``n`` samples of one 32 px student frame and one teacher clip."""
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=dict(
            imgs=[torch.randint(0, 256, (1, 3, 32, 32), generator=g,
                                dtype=torch.uint8) for _ in range(n)],
            teacher_imgs=[torch.randint(0, 256, (1, 3, *clip_shape),
                                        generator=g, dtype=torch.uint8)
                          for _ in range(n)]),
        data_samples=[set_gt_label(ActionDataSample(), i % 4)
                      for i in range(n)])


def families():
    return sorted(d for d in os.listdir(RECOGNITION)
                  if osp.isdir(osp.join(RECOGNITION, d)))


def test_every_family_has_a_row_here_and_in_the_docs():
    missing = set(families()) - set(TEACHERS) - set(STUDENTS)
    assert not missing, (
        f'mmaction2 has recognition families without a row here: '
        f'{sorted(missing)}; add each to TEACHERS or STUDENTS (and to the '
        'family tables of docs/user_guides/teachers.md)')
    with open(osp.join(REPO, 'docs', 'user_guides', 'teachers.md')) as f:
        rows = {line.split('|')[1].strip() for line in f
                if line.startswith('| ')}
    undocumented = set(families()) - rows
    assert not undocumented, (
        f'docs/user_guides/teachers.md has no row for {sorted(undocumented)}')


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    """One 24-frame 32 px video and its list, for the extractions."""
    return make_video_dataset(str(tmp_path_factory.mktemp('zoo')),
                              num_videos=1)


def section(family: str, **extra) -> dict:
    """The ``model.hallucination`` section a user writes for ``family``'s
    zoo teacher, shrunk with ``teacher_cfg_options``."""
    config, options, (clip_len, height, width) = TEACHERS[family]
    return dict(
        teacher=f'mmaction::recognition/{family}/{config}',
        teacher_cfg_options=options,
        clip_len=clip_len,
        teacher_scale=(height, width),
        loss_weight=1.0,
        **extra)


def recipe_config(video: dict, hallucination: dict) -> Config:
    """mmaction2's TSN recipe with ``hallucination`` and the data paths a
    user would pass with ``--cfg-options``."""
    cfg = Config.fromfile(osp.join(RECOGNITION, 'tsn', STUDENTS['tsn'][0]))
    cfg.merge_from_dict({
        'train_dataloader.dataset.ann_file': video['ann_file'],
        'train_dataloader.dataset.data_prefix.video': video['video_dir'],
        'model.backbone.pretrained': None,
    })
    cfg.model.hallucination = hallucination
    return cfg


@pytest.mark.parametrize('family', sorted(TEACHERS))
def test_zoo_teacher(family, video, tmp_path):
    args = apply_section(STUDENT, section(family, random_teacher=True),
                         f'{family} teacher')
    torch.manual_seed(0)
    init_default_scope('mmaction')
    # Without init_weights: a teacher without a checkpoint would fetch its
    # classifier's init_cfg (UniFormerV2).
    model = MODELS.build(args)
    clip_shape = model.teacher.clip_shape
    data = model.data_preprocessor(batch(clip_shape), training=True)
    # The width inferred on the meta device is what the teacher gives.
    target = model.teacher(data['inputs']['teacher_imgs'])
    width = args['hallu_head']['out_channels']
    assert target.shape == (2, width)
    assert torch.isfinite(target).all()
    # One hallucination step: the student learns, the teacher does not.
    teacher_before = [p.clone() for p in model.teacher.parameters()]
    optim = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1))
    losses = model.train_step(batch(clip_shape), optim)
    assert torch.isfinite(losses['loss_hallu'])
    assert all(torch.equal(a, b) for a, b in
               zip(teacher_before, model.teacher.parameters()))
    # One bank extraction from the recipe's config (the teacher's random
    # weights as its checkpoint), then the check that training from it
    # runs.
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=model.teacher.model.state_dict()), ckpt)
    cfg = recipe_config(video, section(family, teacher_ckpt=ckpt))
    # As tools/extract_teacher_features.py: the section applied first.
    apply_hallucination(cfg, switch_bank=False)
    store = str(tmp_path / 'bank')
    # (A window every 16 frames: one or two of the video's 24.)
    extract_teacher_features(cfg, store, stride=16, dtype='float32',
                             workers=0, device='cpu', progress=False)
    total, feats = FeatureBank(store).get('video_000.mp4')
    assert total == 24 and feats.shape[1] == width
    assert np.isfinite(feats).all()
    cfg = recipe_config(video, section(family, teacher_ckpt=ckpt,
                                       bank=store))
    assert apply_hallucination(cfg) is not None


@pytest.mark.parametrize('family', sorted(STUDENTS) + ['tpn-tsm'])
def test_student_recipe(family):
    config, refusal = TPN_TSM if family == 'tpn-tsm' else STUDENTS[family]
    folder = 'tpn' if family == 'tpn-tsm' else family
    cfg = Config.fromfile(osp.join(RECOGNITION, folder, config))
    cfg.model.hallucination = dict(
        teacher=f'mmaction::recognition/x3d/{TEACHERS["x3d"][0]}',
        random_teacher=True, teacher_scale=(32, 32), clip_len=4)
    if refusal is None:
        apply_hallucination(cfg)
        assert cfg.model.type == 'HalluciNet'
    else:
        with pytest.raises(ValueError, match=refusal):
            apply_hallucination(cfg)
