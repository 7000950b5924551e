"""Shared builders of the recognizer tests: real timm students, real
mmaction2 3D teachers, tiny sizes."""
import copy

import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

from hallucinet_plugin.utils import set_gt_label
from tests.conftest import TINY_TEACHER_DIM, tiny_teacher

NUM_CLASSES = 4

# name -> (teacher config, clip length, clip size, teacher dim)
TEACHERS = {
    'resnet3d': (tiny_teacher()['backbone'], 8, 32, TINY_TEACHER_DIM),
    'x3d': (dict(
        type='X3D', gamma_w=0.5, gamma_b=1.0, gamma_d=0.5,
        pretrained=None), 8, 32, 128),
    'c3d': (dict(type='C3D', pretrained=None, out_dim=2048), 16, 32, 4096),
    'slowfast': (dict(
        type='ResNet3dSlowFast',
        resample_rate=4,
        speed_ratio=2,
        channel_ratio=4,
        pretrained=None,
        slow_pathway=dict(
            type='resnet3d',
            depth=18,
            pretrained=None,
            lateral=True,
            base_channels=8,
            conv1_kernel=(1, 7, 7),
            conv1_stride_t=1,
            pool1_stride_t=1,
            inflate=(0, 0, 1, 1)),
        fast_pathway=dict(
            type='resnet3d',
            depth=18,
            pretrained=None,
            lateral=False,
            base_channels=2,
            conv1_kernel=(5, 7, 7),
            conv1_stride_t=1,
            pool1_stride_t=1)), 8, 32, 64 + 16),
    'timesformer': (dict(
        type='TimeSformer',
        num_frames=8,
        img_size=32,
        patch_size=8,
        pretrained=None,
        embed_dims=32,
        num_heads=2,
        num_transformer_layers=2), 8, 32, 32),
    'resnext3d': (dict(
        type='ResNeXt3D',
        depth=50,
        cardinality=4,
        base_planes=32,
        stem_channels=16), 8, 32, 512),
}

# name -> (backbone config, student dim)
STUDENTS = {
    'vgg': (dict(type='timm.vgg11_bn', pretrained=False), 4096),
    'resnet': (dict(type='timm.resnet10t', pretrained=False), 512),
    'mobilenet': (dict(type='timm.mobilenetv3_small_050',
                       pretrained=False), 1024),
    'convnext': (dict(type='timm.convnext_atto', pretrained=False), 320),
    'vit': (dict(
        type='timm.vit_tiny_patch16_224', pretrained=False,
        img_size=32), 192),
    'swin': (dict(
        type='timm.swin_tiny_patch4_window7_224',
        pretrained=False,
        img_size=32,
        window_size=2,
        depths=(1, 1, 1, 1)), 768),
    'mmaction-resnet-tsm': (dict(
        type='ResNetTSM',
        depth=18,
        pretrained=None,
        pretrained2d=False,
        num_segments=2), 512),
    'torchvision-resnet18': (dict(type='torchvision.resnet18'), 512),
}


def hallucinet_cfg(student='resnet',
                   teacher='resnet3d',
                   fusion='concat',
                   frames=1,
                   recognizer_teacher=True,
                   teacher_args=None,
                   **kwargs):
    """A HalluciNet config; ``teacher_args`` go to its ``FrozenTeacher``
    (``checkpoint``, ``layer``, ...), ``kwargs`` to HalluciNet."""
    backbone, s_dim = STUDENTS[student]
    t_cfg, _, _, t_dim = TEACHERS[teacher]
    t_cfg = copy.deepcopy(t_cfg)
    if recognizer_teacher:
        t_cfg = dict(
            type='Recognizer3D',
            backbone=t_cfg,
            cls_head=dict(
                type='I3DHead', num_classes=NUM_CLASSES, in_channels=t_dim))
    in_channels = dict(
        concat=frames * s_dim + t_dim, direct=t_dim,
        none=frames * s_dim)[fusion]
    cfg = dict(
        type='HalluciNet',
        backbone=copy.deepcopy(backbone),
        teacher=dict(type='FrozenTeacher', model=t_cfg,
                     **(teacher_args or {})),
        hallu_head=dict(
            type='HallucinationHead',
            in_channels=frames * s_dim,
            out_channels=t_dim,
            loss_hallu=dict(type='HallucinationLoss', loss_weight=10.0)),
        fusion=fusion,
        frames_per_segment=frames,
        cls_head=dict(
            type='TSNHead',
            num_classes=NUM_CLASSES,
            in_channels=in_channels,
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            teacher=dict(mean=[114.8, 107.7, 99.5], std=[1., 1., 1.])))
    cfg.update(kwargs)
    return cfg


def make_batch(teacher='resnet3d', num_segs=2, frames=1, size=32, n=2,
               seed=0):
    g = torch.Generator().manual_seed(seed)
    _, clip_len, clip_size, _ = TEACHERS[teacher]
    imgs = [
        torch.randint(0, 256, (num_segs * frames, 3, size, size),
                      generator=g).to(torch.uint8) for _ in range(n)
    ]
    clips = [
        torch.randint(0, 256, (num_segs, 3, clip_len, clip_size, clip_size),
                      generator=g).to(torch.uint8) for _ in range(n)
    ]
    samples = [set_gt_label(ActionDataSample(), i % NUM_CLASSES)
               for i in range(n)]
    return dict(
        inputs=dict(imgs=imgs, teacher_imgs=clips), data_samples=samples)


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def monet_late_cfg(weights=(1.0, 1.0)):
    cfg = hallucinet_cfg(fusion='none')
    cfg.pop('fusion')
    cfg.update(
        type='LateFusionHalluciNet',
        hallu_head=dict(
            type='MoNetHead', in_channels=512, out_channels=64,
            num_layers=3),
        hallu_cls_head=dict(
            type='TSNHead', num_classes=NUM_CLASSES, in_channels=64),
        late_fusion_weights=weights)
    return cfg


def appearance_model(seed):
    """An appearance-only model (the MoNet config without hallucination)
    whose weights and BN statistics differ from any fresh build."""
    torch.manual_seed(seed)
    cfg = hallucinet_cfg(fusion='none')
    cfg.pop('hallu_head')
    cfg.pop('teacher')
    model = build(cfg)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.mul_(torch.empty_like(value).uniform_(0.8, 1.2))
    return model


