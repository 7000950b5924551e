# The vanilla 2D student on the generated diving demo: the same student,
# frames, LSTM head and schedule as HalluciNet, no teacher and no
# hallucination; only the six student frames are decoded.
_base_ = [
    '../../_base_/models/dive-demo_resnet10t_r3d-tiny_lstm.py',
    '../../_base_/datasets/dive-demo_sparse-1x16x6.py',
    '../../_base_/schedules/dive-demo_adam-20e.py',
    '../../_base_/default_runtime.py'
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(save_best='aqa/spearman', rule='greater'))
model = dict(
    hallu_head=None,
    data_preprocessor=dict(
        _delete_=True,
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        format_shape='NCHW'))
window = {{_base_.window}}
stride = {{_base_.stride}}
clip_len = {{_base_.clip_len}}
student_size = {{_base_.student_size}}
meta_keys = {{_base_.meta_keys}}
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSparseSampleFrames',
        window=window,
        stride=stride,
        clip_len=clip_len,
        with_teacher=False),
    dict(type='DecordDecode'),
    dict(
        type='Resize',
        scale=(student_size, student_size),
        keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
