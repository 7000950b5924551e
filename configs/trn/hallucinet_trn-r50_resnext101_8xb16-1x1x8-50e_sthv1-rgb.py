# HalluciNet on TRN-R50 with 8 segments: each segment's student frame
# hallucinates the frozen 3D-ResNeXt-101's representation of the 16-frame
# clip that starts there; the temporal relation head sees both.
#
# Follows mmaction2's recipe
#   configs/recognition/trn/
#       trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv1-rgb.py
# (with its bases trn_..._sthv2-rgb.py and _base_/models/trn_r50.py),
# written out here because mmaction2's packaged configs cannot be inherited
# portably by path. Every line that differs from the recipe is marked
# `# HalluciNet:`; all else is the recipe's. Test pipelines are the
# recipe's: only the student runs.
_base_ = ['../_base_/default_runtime.py']  # HalluciNet: plugin runtime

# dataset settings
dataset_type = 'RawframeDataset'
data_root = 'data/sthv1/rawframes'
data_root_val = 'data/sthv1/rawframes'
ann_file_train = 'data/sthv1/sthv1_train_list_rawframes.txt'
ann_file_val = 'data/sthv1/sthv1_val_list_rawframes.txt'
ann_file_test = 'data/sthv1/sthv1_val_list_rawframes.txt'
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
        type='ResNet',
        pretrained='torchvision://resnet50',
        depth=50,
        norm_eval=False,
        partial_bn=True),
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
        type='TRNHead',
        num_classes=174,
        in_channels=student_dim + teacher_dim,  # HalluciNet: was 2048
        num_segments=num_segments,
        spatial_type='avg',
        relation_type='TRNMultiScale',
        hidden_dim=256,
        dropout_ratio=0.8,
        init_std=0.001,
        average_clips='prob'),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',  # HalluciNet: was Action...
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCHW',
        # HalluciNet: Hara et al.'s normalisation for the teacher view
        teacher=dict(mean=[114.7748, 107.7354, 99.4750], std=[1., 1., 1.])))

file_client_args = dict(io_backend='disk')

sthv1_flip_label_map = {2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}
train_pipeline = [
    # HalluciNet: was SampleFrames(clip_len=1, frame_interval=1,
    # num_clips=8). Same 8 segments; each student frame is the first frame
    # of a 16-frame teacher clip, so it is drawn from the first
    # total_frames - 15 frames.
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='RawFrameDecode', **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5, flip_label_map=sthv1_flip_label_map),
    # HalluciNet: crops and flip above are shared by both views
    dict(type='HalluSplitViews', teacher_scale=(112, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    # HalluciNet: was PackActionInputs()
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
val_pipeline = [
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=8,
        test_mode=True),
    dict(type='RawFrameDecode', **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=8,
        twice_sample=True,
        test_mode=True),
    dict(type='RawFrameDecode', **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
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
        data_prefix=dict(img=data_root),
        filename_tmpl='{:05}.jpg',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(img=data_root_val),
        filename_tmpl='{:05}.jpg',
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
        data_prefix=dict(img=data_root_val),
        filename_tmpl='{:05}.jpg',
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=50, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    constructor='TSMOptimWrapperConstructor',
    paramwise_cfg=dict(fc_lr5=False),
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=20, norm_type=2))

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=50,
        by_epoch=True,
        milestones=[30, 45],
        gamma=0.1)
]

default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))

find_unused_parameters = True
