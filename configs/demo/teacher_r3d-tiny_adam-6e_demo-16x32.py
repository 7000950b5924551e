# Stage 1 of the demo: the 3D teacher, trained on the larger teacher_train
# split (the paper's teacher was pre-trained on Kinetics, far more video than
# the students' labelled set).
_base_ = [
    '../_base_/models/demo_r3d-tiny_teacher.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/demo'
video_root = f'{data_root}/videos'
clip_len = 16
teacher_size = 32

model = dict(
    type='Recognizer3D',
    backbone={{_base_.teacher_model.backbone}},
    cls_head={{_base_.teacher_model.cls_head}},
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        format_shape='NCTHW'))

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=1,
         num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(teacher_size, teacher_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=1,
         num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(teacher_size, teacher_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='VideoDataset',
        ann_file=f'{data_root}/teacher_train_list.txt',
        data_prefix=dict(video=video_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VideoDataset',
        ann_file=f'{data_root}/val_list.txt',
        data_prefix=dict(video=video_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=3)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=6, by_epoch=True, eta_min=1e-5)
]
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
