# Hallucination in pre-training (the paper's Table 9), stage 1 without
# hallucination: the vanilla VGG11-bn student trained on UCF101 (static
# protocol), exactly configs/vanilla_vgg11-bn_adam-30e_ucf101-static.py, into
# the work directory the stage-2 configs read (epoch_30.pth):
#   python tools/train.py configs/mtl_aqa/pretrain/\
#       stage1_vanilla_vgg11-bn_adam-30e_ucf101-static.py
_base_ = ['../../vanilla_vgg11-bn_adam-30e_ucf101-static.py']
work_dir = 'work_dirs/mtl_aqa/pretrain/vanilla_ucf101-static'
