# MoNet with a 3D teacher per segment (as in HalluciNet): the hallucinated
# stream regresses, for each of the 8 segments, the pooled last stage of
# the frozen 3D-ResNeXt-101 (Hara et al., Kinetics) on the 16-frame clip
# that starts at the segment's frame, instead of a flow TSN's features.
# MoNetLoss's classifier is that teacher's Kinetics classifier: convert its
# checkpoint with
#   python tools/convert_hara_checkpoint.py resnext-101-kinetics.pth \
#       checkpoints/resnext101_hara_kinetics.pth --keep-fc
# (without --keep-fc, drop classifier/classifier_ckpt from loss_hallu: the
# loss is then the per-step MSE alone). Everything else is
# monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py.
_base_ = ['./monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py']
num_segments = {{_base_.num_segments}}
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
clip_len = 16
teacher_size = 112

model = dict(
    teacher=dict(
        model=dict(
            _delete_=True,
            type='Recognizer3D',
            backbone=dict(type='ResNeXt3D', depth=101, cardinality=32),
            cls_head=dict(
                type='I3DHead', num_classes=400, in_channels=2048)),
        checkpoint=teacher_ckpt),
    hallu_head=dict(
        loss_hallu=dict(
            classifier=dict(num_classes=400), classifier_ckpt=teacher_ckpt)),
    data_preprocessor=dict(
        teacher=dict(
            _delete_=True,
            format_shape='NCTHW',
            mean=[114.7748, 107.7354, 99.4750],
            std=[1., 1., 1.])))

train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    # Crops and flip above are shared; the teacher clips get their size.
    dict(type='HalluSplitViews', teacher_scale=(teacher_size, teacher_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# The feature bank (tools/extract_teacher_features.py, then tools/train.py
# --teacher-bank) stores one view per clip: MultiScaleCrop's random crops
# cannot be replayed, so it holds the centre crop (as the test view).
teacher_bank_view = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
]
