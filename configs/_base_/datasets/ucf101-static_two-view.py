# UCF101, static protocol (the paper's UCF-static): the student frame is the
# first frame of the 16-frame teacher clip; at test time the clip sits at the
# video's centre. Annotation files are mmaction2 video lists
# (`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0`); convert the official
# split lists with tools/convert_split_list.py
# (docs/user_guides/paper_setups.md).
# HalluVideoDataset: mmaction2's VideoDataset that checks every annotation
# line (columns, labels < num_classes) and file at start-up.
dataset_type = 'HalluVideoDataset'
data_root = 'data/ucf101/videos'
split = 1
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_videos.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'
ann_file_test = ann_file_val

student_size = 227
teacher_size = 112
clip_len = 16

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(type='HalluSampleFrames', clip_len=clip_len, num_segments=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomCrop', size=student_size),
    dict(type='Flip', flip_ratio=0.5),
    # Crop and flip above are shared; each view gets its own size here.
    dict(type='HalluSplitViews', teacher_scale=(teacher_size, teacher_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=1,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=student_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_classes=101,
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
        num_classes=101,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
