# MoNet, stage 1, YouTube-8M (rgb -> motion features): 5 MoNet layers
# hallucinate the motion features from the appearance features; the
# classifiers come frozen from the real two-stream model; MoNetLoss (squared
# error + alpha * L1 of the motion classifier's sigmoid probabilities). Test
# time reads only the appearance stream.
_base_ = ['./two-stream_nextvlad_adam-40e_youtube8m-frame-features.py']
appearance_dim = {{_base_.appearance_dim}}
motion_dim = {{_base_.motion_dim}}
num_steps = {{_base_.num_steps}}
two_stream_ckpt = ('work_dirs/two-stream_nextvlad_adam-40e_'
                   'youtube8m-frame-features/epoch_40.pth')

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
    dict(type='LoadFeatureSequence', streams=('appearance', )),
    dict(type='SampleFeatureSequence', num_steps=num_steps, test_mode=True),
    dict(type='PackActionInputs', collect_keys=('appearance', ))
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
