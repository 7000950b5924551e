# A small 3D teacher for the demo: mmaction2's ResNet3d-18 at 1/4 width
# (base_channels 8, 64-d last stage), no temporal downsampling in the stem.
teacher_model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ResNet3d',
        depth=18,
        base_channels=8,
        pretrained=None,
        pretrained2d=False,
        conv1_kernel=(3, 7, 7),
        conv1_stride_t=1,
        pool1_stride_t=1,
        inflate=(1, 1, 1, 1),
        norm_eval=False),
    cls_head=dict(
        type='I3DHead',
        num_classes=8,
        in_channels=64,
        dropout_ratio=0.3,
        average_clips='prob'))
teacher_dim = 64
