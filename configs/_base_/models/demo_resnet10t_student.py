# The demo's student: timm resnet10t (512-d), trained from scratch (the demo
# needs no download) at 48x48, with the demo teacher's 64-d target.
student_dim = 512
model = dict(
    type='HalluciNet',
    backbone=dict(type='timm.resnet10t', pretrained=False),
    cls_head=dict(
        type='TSNHead',
        num_classes=8,
        in_channels=student_dim,
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.3,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        format_shape='NCHW',
        teacher=dict(mean=[127.5, 127.5, 127.5], std=[64., 64., 64.])))
