# HalluciNet on the generated diving demo (python -m demo dive runs it): a
# tiny 2D student sees every 16th frame of a dive's first 96 and, from each,
# hallucinates the tiny 3D teacher's representation of the 16 frames that
# start there; an LSTM reads the six frames for the five dive properties and
# the score. At test time only the student runs.
_base_ = [
    '../../_base_/models/dive-demo_resnet10t_r3d-tiny_lstm.py',
    '../../_base_/datasets/dive-demo_sparse-1x16x6.py',
    '../../_base_/schedules/dive-demo_adam-20e.py',
    '../../_base_/default_runtime.py'
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(save_best='aqa/spearman', rule='greater'))
teacher_ckpt = 'work_dirs/dive_demo/teacher/teacher.pth'
model = dict(
    teacher=dict(
        type='FrozenTeacher',
        model={{_base_.teacher_model}},
        checkpoint=teacher_ckpt))
