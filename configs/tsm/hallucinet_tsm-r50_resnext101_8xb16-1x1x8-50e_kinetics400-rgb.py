# HalluciNet on mmaction2's TSM-R50 recipe with 8 segments: each segment's
# student frame hallucinates the frozen 3D-ResNeXt-101's representation of
# the 16-frame clip that starts there; the TSM classifier sees both.
# All else is the recipe's, test pipelines included (only the student runs).
_base_ = ('../_base_/mmaction/'
          'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py')

# The plugin's runtime additions (configs/_base_/default_runtime.py).
custom_imports = dict(
    imports=['hallucinet_plugin'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook')]

# The teacher's checkpoint: tools/convert_hara_checkpoint.py.
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
num_segments = 8
clip_len = 16  # teacher frames per segment
student_dim = 2048
teacher_dim = 2048

model = dict(
    type='HalluciNet',  # the recipe's ResNetTSM backbone is the student
    # The frozen teacher and the head that hallucinates it (lambda 50, the
    # paper's value for recognition).
    teacher=dict(
        type='FrozenTeacher',
        model=dict(
            type='Recognizer3D',
            backbone=dict(type='ResNeXt3D', depth=101, cardinality=32),
            cls_head=dict(
                type='I3DHead', num_classes=400, in_channels=teacher_dim)),
        checkpoint=teacher_ckpt),
    hallu_head=dict(
        type='HallucinationHead',
        in_channels=student_dim,
        out_channels=teacher_dim,
        loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)),
    fusion='concat',
    cls_head=dict(in_channels=student_dim + teacher_dim),
    data_preprocessor=dict(
        type='HalluciNetDataPreprocessor',
        # Hara et al.'s normalisation for the teacher view.
        teacher=dict(mean=[114.7748, 107.7354, 99.4750], std=[1., 1., 1.])))

train_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    # Was SampleFrames(clip_len=1, num_clips=8): the same 8 segments, each
    # frame starting a 16-frame teacher clip (within total_frames - 15).
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    # The crops and flip above are shared by both views.
    dict(type='HalluSplitViews', teacher_scale=(112, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# The feature bank (tools/extract_teacher_features.py, then tools/train.py
# --teacher-bank) stores one view per clip: MultiScaleCrop's random crops
# cannot be replayed, so it holds the centre crop (as the test view).
teacher_bank_view = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
]

# TSM's parameter groups (the recipe's fc_lr5=True: fc_cls at 5x / 10x
# learning rates) over the student alone, the frozen teacher left out.
optim_wrapper = dict(constructor='HalluciNetOptimWrapperConstructor')
