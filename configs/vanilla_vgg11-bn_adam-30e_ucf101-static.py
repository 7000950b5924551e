# The vanilla 2D baseline on UCF-static: the same VGG11-bn student, frames
# and schedule as HalluciNet, without teacher, hallucination head or teacher
# view (HalluciNet without them is mmaction2's Recognizer2D). Data as in the
# main config.
_base_ = ['./hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']

model = dict(
    teacher=None,
    hallu_head=None,
    cls_head=dict(in_channels=4096),
    data_preprocessor=dict(
        _delete_=True,
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCHW'))

# The student frame is drawn exactly as for HalluciNet (the first frame of a
# random 16-frame clip), but only that frame is decoded.
train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=16,
        num_segments=1,
        with_teacher=False),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomCrop', size=227),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
