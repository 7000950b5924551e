# Not a training config: it tells the feature bank's extraction how to store
# the demo student's per-frame appearance features, the appearance stream of
# MoNet's feature-level demo. The 2D student is wrapped as a frozen
# "teacher" of 1-frame clips (PerFrameBackbone), seeing the student's view
# (48 px, the student's normalisation); a window every frame.
#   python tools/extract_teacher_features.py \
#       configs/monet/features/demo/appearance-bank_resnet10t_demo.py \
#       --splits train val --out work_dirs/monet_feature_demo/appearance.lmdb
_base_ = ['../../../demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py']
student_size = {{_base_.student_size}}
# The main demo's vanilla student (python -m demo monet-features passes the
# checkpoint it uses).
student_ckpt = 'work_dirs/demo/vanilla/seed0/epoch_38.pth'

model = dict(
    teacher=dict(
        model=dict(
            _delete_=True,
            type='PerFrameBackbone',
            backbone=dict(type='timm.resnet10t', pretrained=False)),
        checkpoint=student_ckpt),
    data_preprocessor=dict(
        teacher=dict(mean=[127.5, 127.5, 127.5], std=[64., 64., 64.])))
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(type='HalluSampleFrames', clip_len=1, student_offsets=[0]),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=(student_size, student_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
