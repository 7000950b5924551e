# MoNet, stage 1: learn to hallucinate the motion features from the
# appearance features. Both classifiers come from the real two-stream model
# and stay frozen; MoNetLoss compares the features (squared error) and the
# motion classifier's probabilities on real and hallucinated features.
# At test time only the appearance features are read.
_base_ = ['./two-stream_linear_adam-20e_demo-features.py']
appearance_dim = {{_base_.appearance_dim}}
motion_dim = {{_base_.motion_dim}}
num_steps = {{_base_.num_steps}}
# python -m demo monet-features passes each seed's own checkpoint.
two_stream_ckpt = ('work_dirs/monet_feature_demo/'
                   'two-stream_linear/seed0/last.pth')

model = dict(
    motion_input='hallucinated',
    hallu_head=dict(
        type='MoNetHead',
        in_channels=appearance_dim,
        out_channels=motion_dim,
        num_layers=5,
        unit='monet',
        loss_hallu=dict(
            type='MoNetLoss',
            alpha=10.0,
            classifier='motion_head',
            classifier_ckpt=two_stream_ckpt,
            classifier_prefix='motion_head.')),
    frozen=('appearance_head', 'motion_head'),
    stream_ckpts=dict(
        appearance_head=two_stream_ckpt, motion_head=two_stream_ckpt))

val_pipeline = [
    dict(type='LoadFeatureSequence', streams=('appearance', ), cache=True),
    dict(type='SampleFeatureSequence', num_steps=num_steps, test_mode=True),
    dict(type='PackActionInputs', collect_keys=('appearance', ))
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
