# MoNet's appearance-only baseline on the demo: the resnet10t student on
# one frame in each of the same 4 segments (TSN, average of the segments'
# scores), no hallucinated stream, the same schedule as
# monet_resnet10t_r3d-tiny_adam-10e_demo.py.
_base_ = ['./vanilla_resnet10t_adam-10e_demo.py']
num_segments = 4
clip_len = {{_base_.clip_len}}
student_size = {{_base_.student_size}}

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments,
        with_teacher=False),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
