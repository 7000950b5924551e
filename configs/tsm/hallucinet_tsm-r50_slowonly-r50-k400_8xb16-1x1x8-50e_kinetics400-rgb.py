# mmaction2's TSM-R50 recipe (Kinetics-400, 8 segments) with hallucination
# of a Kinetics-400 SlowOnly-R50 from mmaction2's model zoo: the whole
# change is the `model.hallucination` section (docs/user_guides/
# your_recipe.md walks through it). Everything else is the recipe's.
_base_ = ('../_base_/mmaction/'
          'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py')

custom_imports = dict(imports=['hallucinet_plugin'])
custom_hooks = [dict(type='HallucinationHook')]

# The teacher: mmaction2's zoo config and its checkpoint, both as the zoo's
# configs/recognition/slowonly/metafile.yml gives them (74.82% top-1 on
# Kinetics-400). It sees 8 frames 8 apart from each student frame on, at
# 224 x 224 as it was trained, and hallucinates its 2048-d pooled output.
model = dict(
    type='HalluciNet',
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
