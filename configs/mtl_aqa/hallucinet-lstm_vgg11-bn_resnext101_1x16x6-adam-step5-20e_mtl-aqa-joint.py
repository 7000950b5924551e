# HalluciNet on MTL-AQA, dive recognition and quality assessment jointly
# (one LSTM head: five property classifiers and the score regressor, the
# losses summed). The student sees every 16th frame of the dive's first 96
# and hallucinates, from each, the 3D teacher's representation of the 16
# frames that start there; at test time only the student runs. AQA schedule
# (lr / 10 every 5 epochs), since the score is part of the task.
#
# Data: the MTL-AQA release under data/mtl_aqa (see
# _base_/datasets/mtl-aqa_sparse-1x16x6.py). Teacher: Hara et al.'s
# resnext-101-kinetics.pth converted with
#   python tools/convert_hara_checkpoint.py resnext-101-kinetics.pth \
#       checkpoints/resnext101_hara_kinetics.pth
_base_ = [
    '../_base_/models/hallucinet-lstm_vgg11-bn_resnext101_mtl-aqa.py',
    '../_base_/datasets/mtl-aqa_sparse-1x16x6.py',
    '../_base_/schedules/adam_1e-4-step5_20e_mtl-aqa.py',
    '../_base_/default_runtime.py'
]
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
model = dict(teacher=dict(checkpoint=teacher_ckpt))
default_hooks = dict(
    checkpoint=dict(save_best='aqa/spearman', rule='greater'))
