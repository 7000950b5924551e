# The paper's Table 9 on generated data (python -m demo dive --pretrain),
# stage 1 with hallucination: the diving demo's student (timm resnet10t,
# 512-d) trained on the main demo's labelled videos (the stand-in for
# UCF101: 8 motion classes, one frame at 48x48) while hallucinating the
# diving demo's teacher (the stand-in for the Kinetics teacher, the same one
# stage 2 hallucinates, so that the hallucination head carries over), as
# the auxiliary task (fusion='none', like the dive models). Its backbone and
# hallucination head start the stage-2 models
# (hallucinet-demo-pt_*_dive-demo.py).
_base_ = [
    '../../../_base_/models/dive-demo_resnet10t_r3d-tiny_lstm.py',
    '../../../_base_/datasets/demo_two-view.py',
    '../../../_base_/schedules/demo_student_adam-10e.py',
    '../../../_base_/default_runtime.py'
]
default_hooks = dict(logger=dict(interval=5))
teacher_ckpt = 'work_dirs/dive_demo/teacher/teacher.pth'
model = dict(
    teacher=dict(
        type='FrozenTeacher',
        model={{_base_.teacher_model}},
        checkpoint=teacher_ckpt),
    cls_head=dict(
        _delete_=True,
        type='TSNHead',
        num_classes={{_base_.num_classes}},
        in_channels={{_base_.student_dim}},
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.3,
        init_std=0.01,
        average_clips='prob'))
work_dir = 'work_dirs/dive_demo/pretrain/hallucinet'
