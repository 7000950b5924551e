# MoNet with the 3D teacher's per-segment targets read from a feature bank:
# the teacher ran once, offline, so training decodes only the 8 student
# frames per video and runs no 3D network. Build the bank first from the
# online config:
#   python tools/extract_teacher_features.py \
#       configs/monet/monet_tsn-r50_resnext101_adam-40e_ucf101.py \
#       --out work_dirs/monet_ucf101_teacher_bank.lmdb
# MoNetLoss still reads the teacher's classifier from its checkpoint.
_base_ = ['./monet_tsn-r50_resnext101_adam-40e_ucf101.py']
data_root = {{_base_.data_root}}
num_segments = {{_base_.num_segments}}
clip_len = {{_base_.clip_len}}
teacher_bank = 'work_dirs/monet_ucf101_teacher_bank.lmdb'

model = dict(teacher=None, teacher_ckpt=None)
train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments,
        with_teacher=False),
    dict(
        type='LoadTeacherFeatures',
        store=teacher_bank,
        data_prefix=data_root,
        clip_len=clip_len),
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
    # Puts the decoded frames in segment order; no teacher view to split.
    dict(type='HalluSplitViews', teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_feats'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
