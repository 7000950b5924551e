# The paper's Table 9 on generated data, stage 1 without hallucination: the
# diving demo's student trained on the main demo's labelled videos alone
# (stage1_hallucinet_*.py without teacher and hallucination head); its
# backbone starts the stage-2 models (vanilla-demo-pt_*_dive-demo.py).
_base_ = ['./stage1_hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py']
student_size = {{_base_.student_size}}
model = dict(
    teacher=None,
    hallu_head=None,
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
work_dir = 'work_dirs/dive_demo/pretrain/vanilla'
