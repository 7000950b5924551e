# HalluciNet on MTL-AQA action quality assessment: the judges' final score
# from every 16th frame of the dive's first 96, as the joint config without
# the dive properties.
_base_ = [
    './hallucinet-lstm_vgg11-bn_resnext101_1x16x6-'
    'adam-step5-20e_mtl-aqa-joint.py'
]

# Quality assessment only: no dive properties.
model = dict(cls_head=dict(properties=None))
train_dataloader = dict(dataset=dict(properties=None))
val_dataloader = dict(dataset=dict(properties=None))
test_dataloader = val_dataloader
val_evaluator = [dict(type='SpearmanCorrelation')]
test_evaluator = val_evaluator
