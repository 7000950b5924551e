# HalluciNet (joint) trained from the teacher feature bank: the frozen
# teacher ran once, offline, over the event videos, so training decodes only
# the six student frames and runs no 3D network. Build the bank first from
# the online config (it names the teacher, its checkpoint, the clip and the
# teacher view); the dive, score and joint configs share it:
#   python tools/extract_teacher_features.py \
#       configs/mtl_aqa/hallucinet-lstm_vgg11-bn_resnext101_1x16x6-\
#   adam-step5-20e_mtl-aqa-joint.py \
#       --out work_dirs/mtl_aqa/teacher_bank.lmdb --splits train
# (the config path on one line).
# Bank keys are event videos; each dive's clips are found by their frame in
# the event video (clip_starts + start_index).
_base_ = [
    './hallucinet-lstm_vgg11-bn_resnext101_1x16x6-'
    'adam-step5-20e_mtl-aqa-joint.py'
]
teacher_bank = 'work_dirs/mtl_aqa/teacher_bank.lmdb'
window = {{_base_.window}}
stride = {{_base_.stride}}
clip_len = {{_base_.clip_len}}
student_size = {{_base_.student_size}}
video_root = {{_base_.video_root}}
meta_keys = {{_base_.meta_keys}}

model = dict(teacher=None, teacher_ckpt=None)
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSparseSampleFrames',
        window=window,
        stride=stride,
        clip_len=clip_len,
        with_teacher=False),
    dict(
        type='LoadTeacherFeatures',
        store=teacher_bank,
        data_prefix=video_root,
        clip_len=clip_len),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    # No flip: the bank holds the features of the unflipped clips, and
    # a mirrored clip's differ.
    dict(type='RandomCrop', size=student_size),
    # Puts the decoded frames in student order; no teacher view to split.
    dict(type='HalluSplitViews', teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(
        type='PackActionInputs',
        collect_keys=('imgs', 'teacher_feats'),
        meta_keys=meta_keys)
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
