# HalluciNet(2f) on UCF-static: the student sees frames j and j + k of the
# teacher clip that starts at j; their 4096-d features are concatenated
# before hallucinating. k = 4 (student_offsets [0, 4]): the paper's value
# of k could not be confirmed here; change `student_offsets` to match it.
# Data and teacher checkpoint as in the main config.
_base_ = ['./hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']

student_offsets = [0, 4]
frames = 2

model = dict(
    frames_per_segment=frames,
    hallu_head=dict(in_channels=frames * 4096),
    cls_head=dict(in_channels=frames * 4096 + 2048))

train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=16,
        num_segments=1,
        student_offsets=student_offsets),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomCrop', size=227),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='HalluSplitViews', teacher_scale=(112, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=16,
        num_segments=1,
        student_offsets=student_offsets,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=227),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
test_pipeline = val_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
