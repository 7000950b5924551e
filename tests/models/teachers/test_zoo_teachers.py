"""Every recognition family of the installed mmaction2's packaged configs,
as a teacher (3D) or as a student recipe (2D), through the
``model.hallucination`` section a user writes.

A teacher family is shrunk only with ``teacher_cfg_options`` (what a user
would do) and checked end to end at a tiny size: its width inferred on the
meta device equals what the real teacher gives, one hallucination training
step, and the feature bank's writer and reader on its output. A student
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
from hallucinet_plugin.feature_bank.store import FeatureBank
from hallucinet_plugin.models.recognizers.hallucination_section import (
    _has_tin_shift,
    apply_section,
)
from hallucinet_plugin.utils import set_gt_label
from tests.conftest import REPO
from tests.datasets.transforms.test_load_teacher_features import write_bank

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
    }, (4, 32, 32)),
    'i3d': ('i3d_imagenet-pretrained-r50-heavy_8xb8-32x2x1-100e_'
            'kinetics400-rgb.py', {}, (4, 32, 32)),
    'mvit': ('mvit-base-p244_32x3x1_kinetics400-rgb.py', {
        'model.backbone.arch': 'tiny',
        'model.backbone.temporal_size': 4,
        'model.backbone.spatial_size': 32,
    }, (4, 32, 32)),
    'omnisource': ('slowonly_r50_8xb16-8x8x1-256e_imagenet-kinetics400-'
                   'rgb.py', {}, (4, 32, 32)),
    'r2plus1d': ('r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb.py', {
        'model.backbone.depth': 18,
    }, (4, 32, 32)),
    'slowfast': ('slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb.py', {},
                 (8, 32, 32)),
    'slowonly': ('slowonly_r50_8xb16-4x16x1-256e_kinetics400-rgb.py', {},
                 (4, 32, 32)),
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
    'tpn': ('tpn-slowonly_r50_8xb8-8x8x1-150e_kinetics400-rgb.py', {},
            (4, 32, 32)),
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
    'x3d': ('x3d_s_13x6x1_facebook-kinetics400-rgb.py', {}, (4, 32, 32)),
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


def section_model(family: str) -> dict:
    config, options, (clip_len, height, width) = TEACHERS[family]
    section = dict(
        teacher=f'mmaction::recognition/{family}/{config}',
        teacher_cfg_options=options,
        clip_len=clip_len,
        teacher_scale=(height, width),
        random_teacher=True,
        loss_weight=1.0)
    return apply_section(STUDENT, section, f'{family} teacher')


@pytest.mark.parametrize('family', sorted(TEACHERS))
def test_zoo_teacher(family, tmp_path):
    args = section_model(family)
    torch.manual_seed(0)
    init_default_scope('mmaction')
    # Without init_weights: a teacher without a checkpoint would fetch its
    # classifier's init_cfg (UniFormerV2).
    model = MODELS.build(args)
    clip_shape = model.teacher.clip_shape
    data = model.data_preprocessor(batch(clip_shape), training=True)
    # The width inferred on the meta device is what the teacher gives.
    target = model.teacher(data['inputs']['teacher_imgs'])
    assert target.shape == (2, args['hallu_head']['out_channels'])
    assert torch.isfinite(target).all()
    # One hallucination step: the student learns, the teacher does not.
    teacher_before = [p.clone() for p in model.teacher.parameters()]
    optim = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1))
    losses = model.train_step(batch(clip_shape), optim)
    assert torch.isfinite(losses['loss_hallu'])
    assert all(torch.equal(a, b) for a, b in
               zip(teacher_before, model.teacher.parameters()))
    # Its target through the feature bank's writer and reader.
    # (12 frames, 8-frame windows every 4: two windows, one per clip.)
    store = write_bank(tmp_path / 'bank', {'v.mp4': (12, target.numpy())})
    total, read = FeatureBank(store).get('v.mp4')
    np.testing.assert_array_equal(read, target.numpy())


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
