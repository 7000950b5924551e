# HalluciNet for dives: the paper's VGG11-bn student and 3D-ResNeXt-101
# teacher (models/hallucinet_vgg11-bn_resnext101.py: ImageNet VGG11-bn,
# Kinetics ResNeXt3D-101 at 16x112x112, one FC + ReLU hallucination head onto
# the teacher's 2048-d pooled last stage, lambda = 50), with an LSTM head
# (DiveLSTMHead) over the 6 per-frame features: one classifier per dive
# property and a score regressor.
#
# What the LSTM sees (fusion): the student's own 4096-d features, with
# hallucination as the auxiliary task (fusion='none'). This follows the
# authors' released HalluciNet code (ParitoshParmar/HalluciNet--PyTorch,
# Single_Frame_Models/UCF101/train_test_main.py: the classifier gets the 2D
# features, the concatenation with the hallucinated ones is commented out)
# and the paper's description of hallucination as an auxiliary task in a
# multitask set-up; the paper's text on the MTL-AQA LSTM input could not be
# checked here. For the fused input set fusion='concat' and
# cls_head.in_channels=4096 + 2048; for the hallucinated one 'direct' and
# 2048.
_base_ = ['./hallucinet_vgg11-bn_resnext101.py']

model = dict(
    fusion='none',
    cls_head=dict(
        _delete_=True,
        type='DiveLSTMHead',
        in_channels=4096,
        hidden_channels=256,
        properties=dict(
            position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8),
        with_score=True,
        # MTL-AQA's code regresses final_score / 17.
        score_scale=17.0))
