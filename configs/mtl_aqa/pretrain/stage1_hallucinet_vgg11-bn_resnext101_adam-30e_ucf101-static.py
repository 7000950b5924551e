# Hallucination in pre-training (the paper's Table 9), stage 1 with
# hallucination: HalluciNet's VGG11-bn student trained on UCF101 (static
# protocol) while hallucinating the Kinetics 3D-ResNeXt-101, exactly
# configs/hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py, into the
# work directory the stage-2 configs read (epoch_30.pth). Its student
# backbone, and its hallucination head (same teacher, same 4096 -> 2048
# mapping), start the stage-2 models.
_base_ = ['../../hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']
work_dir = 'work_dirs/mtl_aqa/pretrain/hallucinet_ucf101-static'
