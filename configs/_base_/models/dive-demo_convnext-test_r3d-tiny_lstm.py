# The dive demo's HalluciNet: timm's tiny test_convnext student (64-d,
# trained from scratch, no download), the demo's tiny 3D teacher
# (demo_r3d-tiny_teacher.py, teacher_dim-d; its classifier for the diving
# demo's 24 motion classes, TEACHER_CLASSES), the paper's FC + ReLU
# hallucination head and lambda = 50, and the LSTM head for the demo's five
# properties and score. As in the MTL-AQA configs the LSTM sees the
# student's features, hallucination being the auxiliary task
# (fusion='none').
_base_ = ['./demo_r3d-tiny_teacher.py']
student_dim = 64
teacher_model = dict(cls_head=dict(num_classes=24))
model = dict(
    type='HalluciNet',
    backbone=dict(type='timm.test_convnext', pretrained=False),
    hallu_head=dict(
        type='HallucinationHead',
        in_channels=student_dim,
        out_channels={{_base_.teacher_dim}},
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)),
    fusion='none',
    cls_head=dict(
        type='DiveLSTMHead',
        in_channels=student_dim,
        hidden_channels=64,
        properties=dict(
            position=3, armstand=2, rotation_type=4, ss_no=4, tw_no=3),
        with_score=True,
        score_scale=17.0),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[64., 64., 64.],
        format_shape='NCHW',
        teacher=dict(mean=[127.5, 127.5, 127.5], std=[64., 64., 64.])))
