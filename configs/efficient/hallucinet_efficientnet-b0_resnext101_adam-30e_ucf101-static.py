# HalluciNet on UCF-static (the paper's set-up) with an efficient timm
# student, efficientnet_b0, in place of VGG11-bn: the same 3D-ResNeXt-101
# teacher, head, lambda and schedule. For the deployment comparison of
# `python tools/benchmark.py --preset efficient` (see
# configs/efficient/README.md).
# The student's features are timm's pooled pre-logits (1280-d).
_base_ = ['../hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']

student_dim = 1280
model = dict(
    backbone=dict(
        type='timm.efficientnet_b0', pretrained=True, _delete_=True),
    hallu_head=dict(in_channels=student_dim),
    cls_head=dict(in_channels=student_dim + 2048))
