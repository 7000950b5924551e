# MoNet's two-stream model on real features, YouTube-8M: its frame-level
# rgb features (appearance) and motion features the user computes, a
# NeXtVLAD classifier per stream (Lin et al. 2018: 128 clusters, expansion
# 2, 8 groups, 2048 hidden), multi-label (sigmoid, binary cross-entropy),
# probabilities averaged. The upper bound of the hallucinated model, and the
# source of MoNet's frozen classifiers.
_base_ = [
    '../../_base_/datasets/youtube8m_frame-features.py',
    '../../_base_/schedules/monet-features_adam-40e.py',
    '../../_base_/default_runtime.py'
]
num_classes = {{_base_.num_classes}}
appearance_dim = {{_base_.appearance_dim}}
motion_dim = {{_base_.motion_dim}}

model = dict(
    type='FeatureSequenceRecognizer',
    classifier=dict(
        type='NeXtVLADHead',
        num_classes=num_classes,
        num_clusters=128,
        expansion=2,
        groups=8,
        hidden_channels=2048,
        dropout_ratio=0.5,
        gating_reduction=8,
        multi_class=True,
        loss_cls=dict(type='BCELossWithLogits'),
        average_clips='prob'),
    stream_channels=dict(appearance=appearance_dim, motion=motion_dim),
    motion_input='real')
