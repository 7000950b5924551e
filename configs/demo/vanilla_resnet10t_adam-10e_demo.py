# The vanilla 2D student: one frame, no hallucination (same code path as
# HalluciNet, without teacher and hallu_head).
_base_ = [
    '../_base_/models/demo_resnet10t_student.py',
    '../_base_/datasets/demo_two-view.py',
    '../_base_/schedules/demo_student_adam-10e.py',
    '../_base_/default_runtime.py'
]
student_size = {{_base_.student_size}}
default_hooks = dict(logger=dict(interval=5))
model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        format_shape='NCHW'))
# One frame per video and no teacher view to decode.
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(type='HalluSampleFrames', clip_len=16, with_teacher=False),
    dict(type='DecordDecode'),
    dict(
        type='Resize',
        scale=(student_size, student_size),
        keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
