# MoNet (Tang, Ma and Zhou, "Hallucinating Optical Flow Features for Video
# Classification", IJCAI 2019) on mmaction2's TSN-R50 recipe with 8
# segments: its student, sampling and validation pipeline; UCF101 and the
# paper's schedule instead of Kinetics-400 and SGD.
#
# Two streams from RGB alone: the appearance stream (an ImageNet-pretrained
# TSN-R50 on one frame per segment, cls_head) and the hallucinated motion
# stream (MoNetHead maps the sequence of the 8 appearance features to 8
# flow features, hallu_cls_head classifies them); their class probabilities
# are averaged at test time (late fusion). In training, MoNetHead regresses
# what a frozen TSN-R50 on optical flow (5 stacked TV-L1 flows per segment,
# starting at the segment's frame) computes, with MoNet's loss: per-step
# MSE + alpha * L1 distance of the flow classifier's class probabilities on
# hallucinated and true features, the classifier being the flow teacher's
# own cls_head (frozen). Inference needs no flow and no teacher.
#
# Before training:
#   1. flow:  python tools/extract_flow.py data/ucf101/ucf101_train_split_1_
#             videos.txt --data-prefix data/ucf101/videos --out
#             data/ucf101/flow --out-list data/ucf101/ucf101_train_split_1_
#             flow.txt --new-short 256 --workers 8
#   2. the flow teacher: tools/train.py configs/monet/
#      tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py, then point
#      flow_teacher_ckpt below at its checkpoint.
#
# The paper's schedule: Adam, lr 2e-4 divided by 10 every 15 epochs, 40
# epochs, gradient norm clipped at 1.0, alpha = 10, 5 MoNet layers with
# tanh. The paper trains MoNet on features of fixed TSN networks; here the
# student is trained end to end (freeze it with backbone.frozen_stages=4,
# norm_eval=True for the paper's setting).
_base_ = ('../_base_/mmaction/'
          'tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py')

# The plugin's runtime additions (configs/_base_/default_runtime.py).
custom_imports = dict(
    imports=['hallucinet_plugin'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook')]

data_root = 'data/ucf101/videos'
flow_root = 'data/ucf101/flow'  # tools/extract_flow.py --out
split = 1
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_videos.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'
flow_teacher_ckpt = ('work_dirs/tsn_imagenet-pretrained-r50_sgd-80e_'
                     'ucf101-flow/best.pth')
num_classes = 101
num_segments = 8
flow_len = 5  # flows per segment: the teacher's in_channels is 2 * flow_len
feat_dim = 2048

# The flow TSN of tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py; its
# data_preprocessor is replaced by the teacher settings of
# HalluciNetDataPreprocessor below.
flow_teacher = dict(
    type='Recognizer2D',
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=2 * flow_len,
        pretrained=None,
        norm_eval=False),
    cls_head=dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=feat_dim,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips='prob'))

model = dict(
    # The recipe's ResNet-50 is the appearance student.
    type='LateFusionHalluciNet',
    # torchvision's ImageNet weights, as in the TSM and TRN recipes (the
    # TSN recipe names torchvision's newer V2 weights).
    backbone=dict(pretrained='torchvision://resnet50'),
    teacher=dict(
        type='FrozenTeacher', model=flow_teacher,
        checkpoint=flow_teacher_ckpt),
    hallu_head=dict(
        type='MoNetHead',
        in_channels=feat_dim,
        out_channels=feat_dim,
        num_layers=5,
        act='tanh',
        loss_hallu=dict(
            type='MoNetLoss',
            alpha=10.0,
            # The flow teacher's classifier, as a per-segment TSN head
            # (segmental consensus over the 8 steps), frozen.
            classifier=dict(
                type='TSNHead',
                num_classes=num_classes,
                in_channels=feat_dim,
                consensus=dict(type='AvgConsensus', dim=1)),
            classifier_ckpt=flow_teacher_ckpt,
            classifier_prefix='cls_head.')),
    late_fusion_weights=(1.0, 1.0),
    cls_head=dict(num_classes=num_classes),
    hallu_cls_head=dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=feat_dim,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',
        # (N, S, 2 * flow_len, H, W) flow stacks: 'NCHW' normalises the
        # channel axis, mmaction2's flow TSN normalisation.
        teacher=dict(
            format_shape='NCHW',
            mean=[128., 128.] * flow_len,
            std=[128., 128.] * flow_len)))

train_pipeline = [
    dict(type='DecordInit'),
    # Each segment's frame starts a window of flow_len flows (flow_len + 1
    # frames), so every window lies inside the video.
    dict(
        type='HalluSampleFrames',
        clip_len=flow_len + 1,
        num_segments=num_segments,
        with_teacher=False),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    # Student frames in segment order.
    dict(type='HalluSplitViews', teacher_scale=None),
    # The flow stacks of the same region, flipped with the student.
    dict(
        type='LoadFlowClips',
        flow_root=flow_root,
        data_prefix=data_root,
        clip_len=flow_len,
        scale=(224, 224)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
# Tested on the recipe's validation view, one view of 8 segments: MoNet
# reads the segments as one sequence, so several crops or clips per video
# would be mixed into it.
test_pipeline = {{_base_.val_pipeline}}

train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
test_dataloader = dict(
    batch_size=8,
    dataset=dict(
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=test_pipeline))

train_cfg = dict(max_epochs=40)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='Adam', lr=2e-4),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=40,
        by_epoch=True,
        milestones=[15, 30],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=5))
auto_scale_lr = dict(base_batch_size=8)  # 1 GPU x 8 videos
