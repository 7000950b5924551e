# MoNet's appearance-only baseline: the same TSN-R50 student, 8 segments,
# data and schedule as monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py,
# without the hallucinated stream (no flow, no teacher).
_base_ = ['./monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py']
num_segments = {{_base_.num_segments}}

# The two-stream model's appearance stream alone: one classifier on the
# student's features.
model = dict(
    _delete_=True,
    type='HalluciNet',
    backbone={{_base_.model.backbone}},
    cls_head={{_base_.model.cls_head}},
    data_preprocessor={{_base_.model.data_preprocessor}})
train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=num_segments),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
