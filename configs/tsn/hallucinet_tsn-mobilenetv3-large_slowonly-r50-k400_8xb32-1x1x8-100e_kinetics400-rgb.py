# mmaction2's TSN recipe (Kinetics-400, 8 segments) with a timm student
# named by its timm name, hallucinating the zoo's Kinetics-400 SlowOnly-R50
# (docs/user_guides/your_recipe.md). Everything else is the recipe's.
_base_ = ('../_base_/mmaction/'
          'tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py')

custom_imports = dict(imports=['hallucinet_plugin'])
custom_hooks = [dict(type='HallucinationHook')]

model = dict(
    type='HalluciNet',
    # Any timm model by name (timm.list_models()); the head reads timm's
    # pre-logits width, 1280 for MobileNetV3-large.
    backbone=dict(
        _delete_=True, type='timm.mobilenetv3_large_100', pretrained=True),
    cls_head=dict(in_channels=1280),
    hallucination=dict(
        teacher='mmaction::recognition/slowonly/'
        'slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb.py',
        teacher_ckpt='https://download.openmmlab.com/mmaction/v1.0/'
        'recognition/slowonly/slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb/'
        'slowonly_r50_8xb16-8x8x1-256e_kinetics400-rgb_20220901-2132fc87.pth',
        clip_len=8,
        frame_interval=8,
        teacher_scale=(224, 224),
        loss_weight=50.))
