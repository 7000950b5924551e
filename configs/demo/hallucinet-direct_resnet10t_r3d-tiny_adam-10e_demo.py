# HalluciNet-direct: the classifier sees only the hallucinated
# representation.
_base_ = ['./hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py']
model = dict(fusion='direct', cls_head=dict(in_channels=64))
