# HalluciNet(2f): frames j and j + 4 of the teacher clip; their features are
# concatenated, then hallucinated.
_base_ = ['./hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py']
student_size = {{_base_.student_size}}
teacher_size = {{_base_.teacher_size}}
student_offsets = [0, 4]
model = dict(
    frames_per_segment=2,
    hallu_head=dict(in_channels=2 * 512),
    cls_head=dict(in_channels=2 * 512 + 64))
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='HalluDecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=16,
            student_offsets=student_offsets),
        dict(type='DecordDecode'),
        dict(
            type='HalluSplitViews',
            student_scale=(student_size, student_size),
            teacher_scale=(teacher_size, teacher_size)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
    ]))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='HalluDecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=16,
            student_offsets=student_offsets,
            with_teacher=False,
            test_mode=True),
        dict(type='DecordDecode'),
        dict(
        type='Resize',
        scale=(student_size, student_size),
        keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')
    ]))
test_dataloader = val_dataloader
