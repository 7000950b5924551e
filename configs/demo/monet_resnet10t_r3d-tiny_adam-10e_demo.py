# MoNet on the demo: the resnet10t student sees one frame in each of 4
# segments (the appearance stream, cls_head); MoNetHead reads the 4
# appearance features as a sequence and hallucinates, per segment, the demo
# 3D teacher's teacher_dim-d representation of the 16-frame clip that
# starts there (the motion stream, hallu_cls_head). The streams' class
# probabilities are averaged at test time. MoNetLoss: per-step MSE + alpha
# (10) * L1 distance of the class probabilities that the teacher's own
# (frozen) classifier gives on hallucinated and true features. The teacher
# stands in for the paper's flow TSN (the demo has no flow teacher).
# As in the paper, the hallucination is learned on fixed appearance
# features: the appearance stream (backbone and cls_head) comes from the
# trained appearance-only baseline, monet-appearance_resnet10t_adam-10e_demo.py
# (python -m demo passes each seed's checkpoint), and stays frozen, so the
# two-stream model differs from the baseline only by the hallucinated
# stream. For end-to-end training set model.freeze_appearance=False and
# model.appearance_ckpt=None (on the demo that gave no gain:
# docs/notes/demo.md).
_base_ = [
    '../_base_/models/demo_resnet10t_student.py',
    '../_base_/models/demo_r3d-tiny_teacher.py',
    '../_base_/datasets/demo_two-view.py',
    '../_base_/schedules/demo_student_adam-10e.py',
    '../_base_/default_runtime.py'
]
default_hooks = dict(logger=dict(interval=5))
teacher_ckpt = 'work_dirs/demo/teacher/teacher.pth'
appearance_ckpt = 'work_dirs/demo/monet-appearance/seed0/epoch_10.pth'
num_segments = 4
clip_len = {{_base_.clip_len}}
teacher_size = {{_base_.teacher_size}}
student_size = {{_base_.student_size}}
num_classes = {{_base_.num_classes}}
student_dim = {{_base_.student_dim}}
teacher_dim = {{_base_.teacher_dim}}

model = dict(
    type='LateFusionHalluciNet',
    teacher=dict(
        type='FrozenTeacher',
        model={{_base_.teacher_model}},
        checkpoint=teacher_ckpt),
    hallu_head=dict(
        type='MoNetHead',
        in_channels=student_dim,
        out_channels=teacher_dim,
        num_layers=5,
        act='tanh',
        loss_hallu=dict(
            type='MoNetLoss',
            alpha=10.0,
            # The teacher's I3DHead fc_cls, applied per segment with
            # segmental consensus.
            classifier=dict(
                type='TSNHead',
                num_classes=num_classes,
                in_channels=teacher_dim,
                consensus=dict(type='AvgConsensus', dim=1)),
            classifier_ckpt=teacher_ckpt,
            classifier_prefix='cls_head.')),
    late_fusion_weights=(1.0, 1.0),
    appearance_ckpt=appearance_ckpt,
    freeze_appearance=True,
    hallu_cls_head=dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=teacher_dim,
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.3,
        init_std=0.01,
        average_clips='prob'))

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=(teacher_size, teacher_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=None),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
