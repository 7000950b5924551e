# The paper's pair: VGG11-bn student (ImageNet-pretrained, 227x227, ImageNet
# normalisation), 3D-ResNeXt-101 teacher (Hara et al., cardinality 32,
# 16x112x112, mean [114.7748, 107.7354, 99.4750] on 0..255, std 1), one FC +
# ReLU hallucination head onto the teacher's 2048-d pooled last stage,
# lambda = 50 (recognition).
#
# The student's features are timm's pooled pre-logits (fc6/fc7 of VGG,
# forward_head(pre_logits=True)): 4096-d for vgg11_bn, not the 512 maps of
# its last convolution.
num_classes = 101
student_dim = 4096
teacher_dim = 2048

model = dict(
    type='HalluciNet',
    backbone=dict(type='timm.vgg11_bn', pretrained=True),
    # The teacher's classifier is never used (only its pooled last stage
    # is hallucinated); a checkpoint without it loads.
    teacher=dict(
        type='FrozenTeacher',
        model=dict(
            type='Recognizer3D',
            backbone=dict(type='ResNeXt3D', depth=101, cardinality=32),
            cls_head=dict(
                type='I3DHead', num_classes=400, in_channels=teacher_dim)),
        checkpoint=None),  # each dataset's config sets it
    hallu_head=dict(
        type='HallucinationHead',
        in_channels=student_dim,
        out_channels=teacher_dim,
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)),
    fusion='concat',
    cls_head=dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=student_dim + teacher_dim,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCHW',
        teacher=dict(mean=[114.7748, 107.7354, 99.4750], std=[1., 1., 1.])))
