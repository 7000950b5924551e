# HalluciNet (fused): appearance features and the hallucinated 16-frame
# representation, concatenated, feed the classifier. lambda = 50 as in the
# paper's recognition experiments.
_base_ = [
    '../_base_/models/demo_resnet10t_student.py',
    '../_base_/models/demo_r3d-tiny_teacher.py',
    '../_base_/datasets/demo_two-view.py',
    '../_base_/schedules/demo_student_adam-10e.py',
    '../_base_/default_runtime.py'
]
default_hooks = dict(logger=dict(interval=5))
teacher_ckpt = 'work_dirs/demo/teacher/teacher.pth'  # python -m demo writes it
model = dict(
    teacher=dict(
        type='FrozenTeacher',
        model={{_base_.teacher_model}},
        checkpoint=teacher_ckpt),
    hallu_head=dict(
        type='HallucinationHead',
        in_channels=512,
        out_channels=64,
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)),
    fusion='concat',
    cls_head=dict(in_channels=512 + 64))
