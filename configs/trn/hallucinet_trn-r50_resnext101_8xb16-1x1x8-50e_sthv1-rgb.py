# HalluciNet on mmaction2's TRN-R50 recipe with 8 segments: each segment's
# student frame hallucinates the frozen 3D-ResNeXt-101's representation of
# the 16-frame clip that starts there; the temporal relation head sees both.
# All else is the recipe's, test pipelines included (only the student runs).
_base_ = ('../_base_/mmaction/'
          'trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv1-rgb.py')

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
    type='HalluciNet',  # the recipe's ResNet backbone is the student
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
    # Was SampleFrames(clip_len=1, num_clips=8): the same 8 segments, each
    # frame starting a 16-frame teacher clip (within total_frames - 15).
    dict(
        type='HalluSampleFrames',
        clip_len=clip_len,
        num_segments=num_segments),
    dict(type='RawFrameDecode', io_backend='disk'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(
        type='Flip',
        flip_ratio=0.5,
        flip_label_map={{_base_.sthv1_flip_label_map}}),
    # The crops and flip above are shared by both views.
    dict(type='HalluSplitViews', teacher_scale=(112, 112)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]
# The recipe's loaders also keep its sthv2 base's data_prefix.video; these
# read frame folders only.
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(_delete_=True, img='data/sthv1/rawframes'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_prefix=dict(_delete_=True, img='data/sthv1/rawframes')))
test_dataloader = dict(
    dataset=dict(data_prefix=dict(_delete_=True, img='data/sthv1/rawframes')))
