# MoNet on the demo, its per-segment teacher targets read from the demo's
# teacher feature bank (the one the HalluciNet demo configs use; built by
# tools/demo.py or tools/extract_teacher_features.py). MoNetLoss still
# reads the teacher's classifier from teacher_ckpt.
_base_ = ['./monet_resnet10t_r3d-tiny_adam-10e_demo.py']
teacher_bank = 'work_dirs/demo/teacher_bank.lmdb'
num_segments = {{_base_.num_segments}}
clip_len = {{_base_.clip_len}}
student_size = {{_base_.student_size}}
video_root = {{_base_.video_root}}

model = dict(teacher=None, teacher_ckpt=None)
train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments,
        with_teacher=False),
    dict(
        type='LoadTeacherFeatures',
        store=teacher_bank,
        data_prefix=video_root,
        clip_len=clip_len),
    dict(type='DecordDecode'),
    # Puts the decoded frames in segment order; no teacher view to split.
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_feats'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
