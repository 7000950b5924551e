# MoNet, stage 2: the motion classifier fine-tuned on the hallucinated
# features (the paper's 20 epochs at half length: 10, rate divided by 10
# after 8), MoNet and the appearance classifier frozen. Reads only the
# appearance features.
_base_ = ['./monet_linear_adam-20e_demo-features.py']
num_steps = {{_base_.num_steps}}
# python -m demo monet-features passes each seed's own stage-1 checkpoint.
monet_ckpt = 'work_dirs/monet_feature_demo/monet_linear/seed0/last.pth'

model = dict(
    hallu_head=dict(loss_hallu=dict(classifier=None, classifier_ckpt=None)),
    frozen=('appearance_head', 'hallu_head'),
    stream_ckpts=dict(
        _delete_=True,
        appearance_head=monet_ckpt,
        motion_head=monet_ckpt,
        hallu_head=monet_ckpt))
train_cfg = dict(max_epochs=10)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1)
]
train_pipeline = [
    dict(type='LoadFeatureSequence', streams=('appearance', ), cache=True),
    dict(type='SampleFeatureSequence', num_steps=num_steps),
    dict(type='PackActionInputs', collect_keys=('appearance', ))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
