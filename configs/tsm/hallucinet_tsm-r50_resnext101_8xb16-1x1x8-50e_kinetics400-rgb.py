# HalluciNet on TSM-R50 with 8 segments: each segment's student frame
# hallucinates the frozen 3D-ResNeXt-101's representation of the 16-frame
# clip that starts there; the TSM classifier sees both.
#
# Follows mmaction2's recipe
#   configs/recognition/tsm/
#       tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py
# (with its _base_/models/tsm_r50.py), written out here because mmaction2's
# packaged configs cannot be inherited portably by path. Every line that
# differs from the recipe is marked `# HalluciNet:`; all else is the
# recipe's. Test pipelines are the recipe's: only the student runs.
_base_ = ['../_base_/default_runtime.py']  # HalluciNet: plugin runtime

# dataset settings
dataset_type = 'VideoDataset'
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
# HalluciNet: the teacher (tools/convert_hara_checkpoint.py)
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
num_segments = 8
clip_len = 16  # HalluciNet: teacher frames per segment
student_dim = 2048
teacher_dim = 2048

# model settings
model = dict(
    type='HalluciNet',  # HalluciNet: was Recognizer2D
    backbone=dict(
        type='ResNetTSM',
        pretrained='torchvision://resnet50',
        depth=50,
        norm_eval=False,
        shift_div=8),
    # HalluciNet: the frozen teacher, its checkpoint and the head that
    # hallucinates it (lambda 50, the paper's value for recognition)
    teacher=dict(
        type='Recognizer3D',
        backbone=dict(type='ResNeXt3D', depth=101, cardinality=32),
        cls_head=dict(
            type='I3DHead', num_classes=400, in_channels=teacher_dim)),
    teacher_ckpt=teacher_ckpt,
    hallu_head=dict(
        type='HallucinationHead',
        in_channels=student_dim,
        out_channels=teacher_dim,
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)),
    fusion='concat',  # HalluciNet
    cls_head=dict(
        type='TSMHead',
        num_classes=400,
        in_channels=student_dim + teacher_dim,  # HalluciNet: was 2048
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.5,
        init_std=0.001,
        is_shift=True,
        average_clips='prob'),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',  # HalluciNet: was Action...
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        # HalluciNet: Hara et al.'s normalisation for the teacher view
        teacher=dict(mean=[114.7748, 107.7354, 99.4750], std=[1., 1., 1.])),
    train_cfg=None,
    test_cfg=None)

file_client_args = dict(io_backend='disk')

train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    # HalluciNet: was SampleFrames(clip_len=1, frame_interval=1,
    # num_clips=8). Same 8 segments; each student frame is the first frame
    # of a 16-frame teacher clip, so it is drawn from the first
    # total_frames - 15 frames.
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    # HalluciNet: crops and flip above are shared by both views
    dict(type='HalluSplitViews', teacher_scale=(112, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    # HalluciNet: was PackActionInputs()
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
# The feature bank (tools/extract_teacher_features.py, then tools/train.py
# --teacher-bank) stores one view per clip: MultiScaleCrop's random crops
# cannot be replayed, so it holds the centre crop (as the test view).
teacher_bank_view = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=8,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=8,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='TenCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=3))

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=50, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5),
    dict(
        type='MultiStepLR',
        begin=0,
        end=50,
        by_epoch=True,
        milestones=[25, 45],
        gamma=0.1)
]

optim_wrapper = dict(
    constructor='TSMOptimWrapperConstructor',
    # HalluciNet: was fc_lr5=True. The constructor gives 5x lr to the last
    # nn.Linear in module order, which in HalluciNet is not the classifier
    # (the hallucination head and the frozen teacher are registered after
    # cls_head), so the recipe's fc_lr5 would miss its target.
    paramwise_cfg=dict(fc_lr5=False),
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=20, norm_type=2))

# Default setting for scaling LR automatically
#   - `enable` means enable scaling LR automatically
#       or not by default.
#   - `base_batch_size` = (8 GPUs) x (16 samples per GPU).
auto_scale_lr = dict(enable=False, base_batch_size=128)
