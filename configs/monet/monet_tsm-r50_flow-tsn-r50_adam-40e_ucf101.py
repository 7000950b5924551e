# MoNet with a TSM-R50 appearance stream (8 segments): as
# monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py, with mmaction2's ResNetTSM
# student and TSMHead classifiers for both streams. The flow teacher, the
# flow view, MoNetHead, MoNetLoss and the paper's schedule are the same.
_base_ = ['./monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py']
num_segments = {{_base_.num_segments}}
num_classes = {{_base_.num_classes}}
feat_dim = {{_base_.feat_dim}}

tsm_head = dict(
    type='TSMHead',
    num_classes=num_classes,
    in_channels=feat_dim,
    num_segments=num_segments,
    spatial_type='avg',
    consensus=dict(type='AvgConsensus', dim=1),
    dropout_ratio=0.5,
    init_std=0.001,
    is_shift=True,
    average_clips='prob')
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetTSM',
        pretrained='torchvision://resnet50',
        depth=50,
        num_segments=num_segments,
        norm_eval=False,
        shift_div=8),
    cls_head=dict(_delete_=True, **tsm_head),
    hallu_cls_head=dict(_delete_=True, **tsm_head))
