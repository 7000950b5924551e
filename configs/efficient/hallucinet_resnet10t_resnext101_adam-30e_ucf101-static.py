# HalluciNet on UCF-static (the paper's set-up) with the demo's student,
# timm's resnet10t, in place of VGG11-bn: the same 3D-ResNeXt-101 teacher,
# head, lambda and schedule. It prices the demo's student design at the
# paper's sizes (`python tools/benchmark.py --preset demo-reference`, and
# the reference rows of `python -m demo`'s table). The student's
# features are timm's pooled pre-logits (512-d).
_base_ = ['../hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']

student_dim = 512
model = dict(
    backbone=dict(
        type='timm.resnet10t', pretrained=True, _delete_=True),
    hallu_head=dict(in_channels=student_dim),
    cls_head=dict(in_channels=student_dim + 2048))
