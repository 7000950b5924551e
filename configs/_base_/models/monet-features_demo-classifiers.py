# The classifiers of MoNet's Table 3, sized for the feature-level demo (8
# classes, 8 steps, 240 training videos; small so that 5 seeds of every
# row fit in minutes): each replaces the linear one (TSNHead) of the demo
# configs, for both streams (FeatureSequenceRecognizer.classifier). The
# paper's sizes are in configs/monet/features/*kinetics400* and *youtube8m*.
trn_classifier = dict(
    _delete_=True,
    type='TRNHead',
    num_classes=8,
    num_segments=8,
    relation_type='TRNMultiScale',
    hidden_dim=64,
    dropout_ratio=0.5,
    average_clips='prob')
netvlad_classifier = dict(
    _delete_=True,
    type='NetVLADHead',
    num_classes=8,
    num_clusters=8,
    hidden_channels=64,
    dropout_ratio=0.5,
    average_clips='prob')
nextvlad_classifier = dict(
    _delete_=True,
    type='NeXtVLADHead',
    num_classes=8,
    num_clusters=8,
    expansion=2,
    groups=8,
    hidden_channels=64,
    dropout_ratio=0.5,
    average_clips='prob')
