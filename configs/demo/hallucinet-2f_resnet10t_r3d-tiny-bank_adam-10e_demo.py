# HalluciNet(2f) trained from the teacher feature bank: the frozen teacher
# ran once, offline, so training decodes only the student frames and runs no
# 3D network. Build the bank first from the online config (it names the
# teacher, its checkpoint, the clip and the teacher view):
#   python tools/extract_teacher_features.py \
#       configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py \
#       --out work_dirs/demo/teacher_bank.lmdb
# The fused, -direct and -2f demo variants share that bank.
_base_ = ['./hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py']
student_size = {{_base_.student_size}}
teacher_bank = 'work_dirs/demo/teacher_bank.lmdb'
clip_len = {{_base_.clip_len}}
student_offsets = {{_base_.student_offsets}}
video_root = {{_base_.video_root}}

model = dict(teacher=None, teacher_ckpt=None)
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        student_offsets=student_offsets,
        with_teacher=False),
    dict(
        type='LoadTeacherFeatures',
        store=teacher_bank,
        data_prefix=video_root,
        clip_len=clip_len),
    dict(type='DecordDecode'),
    # Puts the decoded frames in student order; no teacher view to split.
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_feats'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
