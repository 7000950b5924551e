# HalluciNet-direct on UCF-static: the classifier sees only the hallucinated
# 2048-d representation, not the student's appearance features. Data and
# teacher checkpoint as in the main config.
_base_ = ['./hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']

model = dict(fusion='direct', cls_head=dict(in_channels=2048))
