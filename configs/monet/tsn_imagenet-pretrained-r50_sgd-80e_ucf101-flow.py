# MoNet's flow-stream teacher: TSN-R50 on stacks of 5 TV-L1 flows (10
# channels, x/y interleaved), trained on the flow that tools/extract_flow.py
# writes. MoNet configs load it (frozen) as their teacher and reuse its
# cls_head in MoNetLoss.
#
# mmaction2's TSN-R50 recipe made a flow TSN as mmaction2 0.x's flow recipe
# did (ResNet-50 with in_channels = 2 * clip_len, mean/std 128 per channel,
# SampleFrames with clip_len 5, FormatShape('NCHW_Flow'), 80 epochs), with
# UCF101 split 1 and this project's flow file names. mmaction2's ResNet
# skips the ImageNet conv1 for 10 input channels (different shape), so conv1
# starts random while the other layers are ImageNet-pretrained.
#
# Data: python tools/extract_flow.py data/ucf101/ucf101_train_split_1_
# videos.txt --data-prefix data/ucf101/videos --out data/ucf101/flow
# --out-list data/ucf101/ucf101_train_split_1_flow.txt --new-short 256
# (and likewise for the val split).
_base_ = ('../_base_/mmaction/'
          'tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py')

# The plugin's runtime additions (configs/_base_/default_runtime.py).
custom_imports = dict(
    imports=['hallucinet_plugin'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook')]

dataset_type = 'RawframeDataset'
data_root = 'data/ucf101/flow'
split = 1
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_flow.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_flow.txt'
filename_tmpl = 'flow_{}_{:05d}.jpg'
clip_len = 5
num_classes = 101

model = dict(
    # torchvision's ImageNet weights (as the TSM and TRN recipes; the TSN
    # recipe names the newer V2 ones), flow stacks as input channels.
    backbone=dict(
        pretrained='torchvision://resnet50', in_channels=2 * clip_len),
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        mean=[128., 128.] * clip_len, std=[128., 128.] * clip_len))

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

# The recipe's loaders, reading flow frames instead of videos.
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(_delete_=True, img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(_delete_=True, img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
        pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(_delete_=True, img=data_root),
        filename_tmpl=filename_tmpl,
        modality='Flow',
        pipeline=test_pipeline))

train_cfg = dict(max_epochs=80, val_interval=5)
optim_wrapper = dict(optimizer=dict(weight_decay=0.0005))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=80,
        by_epoch=True,
        milestones=[30, 60],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=5))
