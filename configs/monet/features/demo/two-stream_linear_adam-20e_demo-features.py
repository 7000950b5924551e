# Two streams on the real features (the upper bound of the hallucinated
# two-stream model): a classifier on the student's appearance features and
# one on the teacher's motion features, their probabilities averaged.
# "linear" is a per-step linear classifier with average consensus (TSNHead).
_base_ = [
    '../../../_base_/datasets/demo_feature-sequences.py',
    '../../../_base_/schedules/monet-features_demo_adam-20e.py',
    '../../../_base_/default_runtime.py'
]
num_classes = {{_base_.num_classes}}
appearance_dim = {{_base_.appearance_dim}}
motion_dim = {{_base_.motion_dim}}

model = dict(
    type='FeatureSequenceRecognizer',
    classifier=dict(
        type='TSNHead',
        num_classes=num_classes,
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.5,
        average_clips='prob'),
    stream_channels=dict(appearance=appearance_dim, motion=motion_dim),
    motion_input='real')
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=-1, save_last=True, save_best=None))
