# Hallucination in pre-training (the paper's Table 9): dive recognition on
# MTL-AQA started from a student pre-trained on UCF101 (static protocol).
# Pre-training with hallucination, fine-tuning without it: the fourth
# cell of the 2 x 2 grid, an ablation beyond the rows quoted in
# configs/mtl_aqa/README.md.
#
# Stage 1 is configs/mtl_aqa/pretrain/stage1_hallucinet_*_ucf101-static.py;
# its student backbone is copied into this model before training
# (PretrainedStudentHook: exactly those tensors, or an error), the LSTM head
# starts afresh; the rest is the config below. Another
# stage-1 checkpoint: --cfg-options custom_hooks.1.checkpoint=PATH
_base_ = ['../vanilla-lstm_vgg11-bn_1x16x6-adam-20e_mtl-aqa-dive.py']

custom_imports = dict(
    imports=[
        'hallucinet_plugin',
        'hallucinet_plugin.engine.hooks.pretrained_student_hook'
    ],
    allow_failed_imports=False)
pretrained_student = ('work_dirs/mtl_aqa/pretrain/hallucinet_ucf101-static/'
                      'epoch_30.pth')
# The student's weights come from stage 1, not from ImageNet.
model = dict(backbone=dict(pretrained=False))
# The runtime's hooks (_base_/default_runtime.py), then the stage-1 weights.
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(
        type='PretrainedStudentHook',
        checkpoint=pretrained_student,
        prefixes=('backbone.', ))
]
