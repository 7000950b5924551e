# YouTube-8M (2018, 3,862 classes) as feature sequences: the released
# frame-level TFRecords (1 fps, 1024-d Inception "rgb" features quantised
# to 8 bits over [-2, 2]), read without TensorFlow; videos and labels come
# from the records (ann_file=None). The dataset has no motion stream: MoNet's
# motion features are computed by the user (e.g. an optical-flow network at
# the same 1-fps steps) and saved as data/youtube8m/flow_features/<id>.npy,
# shape (T, motion_dim), T equal to the video's rgb frames. Every video of
# the records must have them (an error names the first that does not).
dataset_type = 'FeatureSequenceDataset'
data_root = 'data/youtube8m'
num_classes = 3862
num_steps = 300  # YouTube-8M's longest videos; shorter ones repeat steps
appearance_dim = 1024
motion_dim = 1024
train_streams = dict(
    appearance=dict(
        type='tfrecord',
        files=f'{data_root}/frame/train*.tfrecord',
        feature='rgb',
        dequantize=(-2.0, 2.0)),
    motion=dict(type='npy', prefix=f'{data_root}/flow_features'))
val_streams = dict(
    appearance=dict(
        type='tfrecord',
        files=f'{data_root}/frame/validate*.tfrecord',
        feature='rgb',
        dequantize=(-2.0, 2.0)),
    motion=dict(type='npy', prefix=f'{data_root}/flow_features'))

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
        ann_file=None,
        streams=train_streams,
        multi_class=True,
        num_classes=num_classes,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=None,
        streams=val_streams,
        multi_class=True,
        num_classes=num_classes,
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

# Hit@1, PERR, GAP@20 and MAP@20, as MoNet's Table 4 reports them.
val_evaluator = dict(type='YouTube8MMetric', top_k=20)
test_evaluator = val_evaluator
