# The demo's videos as feature sequences (MoNet's feature-level setting):
# per video, the appearance features of the demo's 2D student (one frame per
# step) and the motion features of its 3D teacher (the 16-frame clip starting
# at that frame), both from feature stores written by the feature bank's
# extraction; python -m demo monet-features builds them and the lists.
dataset_type = 'FeatureSequenceDataset'
feature_root = 'work_dirs/monet_feature_demo'
ann_file_train = f'{feature_root}/train_list.txt'
ann_file_val = f'{feature_root}/val_list.txt'
streams = dict(
    appearance=dict(type='bank', store=f'{feature_root}/appearance.lmdb'),
    motion=dict(type='bank', store=f'{feature_root}/motion.lmdb'))
num_classes = 8
num_steps = 8
appearance_dim = 512
motion_dim = 64

train_pipeline = [
    dict(type='LoadFeatureSequence', cache=True),
    dict(type='SampleFeatureSequence', num_steps=num_steps),
    dict(type='PackActionInputs', collect_keys=('appearance', 'motion'))
]
val_pipeline = [
    dict(type='LoadFeatureSequence', cache=True),
    dict(type='SampleFeatureSequence', num_steps=num_steps, test_mode=True),
    dict(type='PackActionInputs', collect_keys=('appearance', 'motion'))
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        streams=streams,
        pipeline=train_pipeline,
        num_classes=num_classes,
        # One process, no workers: nothing to share, and serialising costs
        # a garbage collection per dataset.
        serialize_data=False))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        streams=streams,
        pipeline=val_pipeline,
        num_classes=num_classes,
        test_mode=True,
        serialize_data=False))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
