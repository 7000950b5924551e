# The vanilla 2D baseline of the joint set-up: the same VGG11-bn student,
# frames, LSTM head and schedule, no teacher and no hallucination; only the
# six student frames are decoded.
_base_ = [
    '../_base_/models/vanilla-lstm_vgg11-bn_mtl-aqa.py',
    '../_base_/datasets/mtl-aqa_sparse-1x16x6.py',
    '../_base_/schedules/adam_1e-4-step5_20e_mtl-aqa.py',
    '../_base_/default_runtime.py'
]
default_hooks = dict(
    checkpoint=dict(save_best='aqa/spearman', rule='greater'))

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
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomCrop', size=student_size),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
