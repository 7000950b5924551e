# Kinetics-400 as feature sequences, MoNet's setting (Tang, Ma and Zhou,
# IJCAI 2019): per video the I3D RGB stream's features (appearance) and the
# I3D optical-flow stream's features (motion), one 1024-d vector per step,
# saved as data/kinetics400/i3d_features/{rgb,flow}/<video_id>.npy arrays of
# shape (T, 1024) with equal T. Lists: "<video_id> <label>" per line.
dataset_type = 'FeatureSequenceDataset'
data_root = 'data/kinetics400/i3d_features'
ann_file_train = 'data/kinetics400/kinetics400_train_features.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_features.txt'
streams = dict(
    appearance=dict(type='npy', prefix=f'{data_root}/rgb'),
    motion=dict(type='npy', prefix=f'{data_root}/flow'))
num_classes = 400
# Steps sampled per video (TSN-style segments over the stored steps); our
# choice, not the paper's: set it near your extraction's T.
num_steps = 32
appearance_dim = 1024
motion_dim = 1024

train_pipeline = [
    dict(type='LoadFeatureSequence'),
    dict(type='SampleFeatureSequence', num_steps=num_steps),
    dict(type='PackActionInputs', collect_keys=('appearance', 'motion'))
]
val_pipeline = [
    dict(type='LoadFeatureSequence'),
    dict(type='SampleFeatureSequence', num_steps=num_steps, test_mode=True),
    dict(type='PackActionInputs', collect_keys=('appearance', 'motion'))
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        streams=streams,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        streams=streams,
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
