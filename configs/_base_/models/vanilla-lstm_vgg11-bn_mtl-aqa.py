# The vanilla 2D baseline for dives: the same ImageNet VGG11-bn student and
# LSTM head as HalluciNet, no teacher, no hallucination head, no teacher view
# (HalluciNet without them runs as mmaction2's Recognizer2D over timm's
# pooled pre-logits).
_base_ = ['./hallucinet-lstm_vgg11-bn_resnext101_mtl-aqa.py']

model = dict(
    teacher=None,
    hallu_head=None,
    data_preprocessor=dict(
        _delete_=True,
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCHW'))
