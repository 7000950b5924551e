# The paper's Table 9 on generated data (python -m demo dive --pretrain), stage
# 2: the diving demo's hallucinet student started from stage 1
# stage1_hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py (hallucinet
# pre-training on the main demo's videos): its student backbone and
# hallucination head (same teacher, same 64 -> 64 map) copied in before
# training (PretrainedStudentHook: exactly those tensors, or an error); the
# LSTM head starts afresh. Another stage-1 checkpoint: --cfg-options
# custom_hooks.1.checkpoint=PATH
_base_ = [
    '../hallucinet-lstm_resnet10t_r3d-tiny_1x16x6-adam-20e_dive-demo.py'
]
custom_imports = dict(
    imports=[
        'hallucinet_plugin',
        'hallucinet_plugin.engine.hooks.pretrained_student_hook'
    ],
    allow_failed_imports=False)
pretrained_student = 'work_dirs/dive_demo/pretrain/hallucinet/epoch_10.pth'
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(
        type='PretrainedStudentHook',
        checkpoint=pretrained_student,
        prefixes=('backbone.', 'hallu_head.'))
]
