# MoNet, stage 2: the motion classifier fine-tuned on the hallucinated
# features for 20 epochs (rate divided by 10 after 15), MoNet and the
# appearance classifier frozen; reads only the appearance stream.
_base_ = ['./monet_nextvlad_adam-40e_kinetics400-i3d-features.py']
num_steps = {{_base_.num_steps}}
monet_ckpt = ('work_dirs/monet_nextvlad_adam-40e_kinetics400-i3d-features/'
              'epoch_40.pth')

model = dict(
    hallu_head=dict(loss_hallu=dict(classifier=None, classifier_ckpt=None)),
    frozen=('appearance_head', 'hallu_head'),
    stream_ckpts=dict(
        _delete_=True,
        appearance_head=monet_ckpt,
        motion_head=monet_ckpt,
        hallu_head=monet_ckpt))
train_cfg = dict(max_epochs=20)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[15], gamma=0.1)
]
train_pipeline = [
    dict(type='LoadFeatureSequence', streams=('appearance', )),
    dict(type='SampleFeatureSequence', num_steps=num_steps),
    dict(type='PackActionInputs', collect_keys=('appearance', ))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
