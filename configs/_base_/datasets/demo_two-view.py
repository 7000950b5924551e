# The embedded demo dataset (python -m demo data): 64x64 mp4 videos
# whose classes differ in how a sprite moves. Students see one frame at
# 48x48, the teacher the 16-frame clip that starts there at 32x32 (64x64
# frames resized: CPU budget). At 32x32 the students' stride-4 stem leaves
# the sprite 2 pixels long, too small for its pose cue: in a probe, vanilla
# and HalluciNet students stayed near chance (10-19% top-1, 4 seeds), while
# at 48x48 both learned it. No flip: it would swap the direction classes.
# HalluVideoDataset: mmaction2's VideoDataset that checks every annotation
# line (columns, labels < num_classes) and file at start-up.
dataset_type = 'HalluVideoDataset'
data_root = 'data/demo'
video_root = f'{data_root}/videos'
ann_file_train = f'{data_root}/train_list.txt'
ann_file_val = f'{data_root}/val_list.txt'
num_classes = 8

clip_len = 16
teacher_size = 32
student_size = 48
student_offsets = [0]

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        student_offsets=student_offsets),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=(teacher_size, teacher_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        student_offsets=student_offsets,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(student_size, student_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_train,
        data_prefix=dict(video=video_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_val,
        data_prefix=dict(video=video_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
