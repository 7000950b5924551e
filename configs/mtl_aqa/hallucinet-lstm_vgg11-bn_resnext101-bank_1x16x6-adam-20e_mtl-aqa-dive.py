# HalluciNet trained from the teacher feature bank (see the joint -bank
# config) on MTL-AQA dive recognition: the five dive properties (position,
# armstand, rotation type, somersaults, twists) from every 16th frame of the
# dive's first 96, as the joint config without the score.
_base_ = [
    './hallucinet-lstm_vgg11-bn_resnext101-bank_1x16x6-'
    'adam-step5-20e_mtl-aqa-joint.py'
]

# Recognition only: no score, the recognition schedule (constant lr, as
# _base_/schedules/adam_1e-4_20e_dive.py) and no single best metric to keep.
model = dict(cls_head=dict(with_score=False))
train_dataloader = dict(dataset=dict(with_score=False))
val_dataloader = dict(dataset=dict(with_score=False))
test_dataloader = val_dataloader
val_evaluator = [dict(type='DivePropertyAccuracy')]
test_evaluator = val_evaluator
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
default_hooks = dict(checkpoint=dict(save_best=None))
