# MoNet's flow-stream teacher: TSN-R50 on stacks of 5 TV-L1 flows (10
# channels, x/y interleaved), trained on the flow that tools/extract_flow.py
# writes. MoNet configs load it (frozen) as their teacher and reuse its
# cls_head in MoNetLoss.
#
# Follows mmaction2's flow TSN recipe (Recognizer2D, ResNet-50 with
# in_channels = 2 * clip_len, mean/std 128 per channel, SampleFrames with
# clip_len 5, FormatShape('NCHW_Flow')) with UCF101 split 1 and this
# project's flow file names. mmaction2's ResNet skips the ImageNet conv1 for
# 10 input channels (different shape), so conv1 starts random while the
# other layers are ImageNet-pretrained.
#
# Data: python tools/extract_flow.py data/ucf101/ucf101_train_split_1_
# videos.txt --data-prefix data/ucf101/videos --out data/ucf101/flow
# --out-list data/ucf101/ucf101_train_split_1_flow.txt --new-short 256
# (and likewise for the val split).
_base_ = ['../_base_/default_runtime.py']

dataset_type = 'RawframeDataset'
data_root = 'data/ucf101/flow'
split = 1
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_flow.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_flow.txt'
filename_tmpl = 'flow_{}_{:05d}.jpg'
clip_len = 5
num_classes = 101

model = dict(
    type='Recognizer2D',
    backbone=dict(
        type='ResNet',
        pretrained='torchvision://resnet50',
        depth=50,
        in_channels=2 * clip_len,
        norm_eval=False),
    cls_head=dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=2048,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[128., 128.] * clip_len,
        std=[128., 128.] * clip_len,
        format_shape='NCHW'))

train_pipeline = [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=1,
         num_clips=3),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW_Flow'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(
        type='SampleFrames',
        clip_len=clip_len,
        frame_interval=1,
        num_clips=8,
        test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW_Flow'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(
        type='SampleFrames',
        clip_len=clip_len,
        frame_interval=1,
        num_clips=25,
        test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='TenCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW_Flow'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
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
        data_prefix=dict(img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
        pipeline=test_pipeline,
        test_mode=True))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=80, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=80,
        by_epoch=True,
        milestones=[30, 60],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=256)
