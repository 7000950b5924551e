# The generated diving demo (hallucinet_plugin/apis/dive_demo_dataset.py,
# python -m demo dive) in MTL-AQA's released layout: 32x32 event videos with
# several dives each. The MTL-AQA pipelines (mtl-aqa_sparse-1x16x6.py) at the
# demo's sizes: every 16th frame of a dive's first 96, the student frames and
# each 16-frame teacher clip at 32x32. No flip: the demo's rotation types
# are told apart by turning clockwise or not with the board on the left.
dataset_type = 'MTLAQADataset'
data_root = 'data/dive_demo'
ann_file = f'{data_root}/final_annotations_dict.pkl'
split_file_train = f'{data_root}/train_split_0.pkl'
split_file_test = f'{data_root}/test_split_0.pkl'
video_root = f'{data_root}/whole_videos'

# dive_demo_dataset.DIVE_PROPERTIES
properties = dict(position=3, armstand=2, rotation_type=4, ss_no=4, tw_no=3)
window = 96
stride = 16
clip_len = 16
student_size = 32
teacher_size = 32
meta_keys = ('img_shape', 'video_id', 'dive_labels', 'score')

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSparseSampleFrames',
        window=window,
        stride=stride,
        clip_len=clip_len),
    dict(type='DecordDecode'),
    dict(
        type='HalluSplitViews',
        student_scale=(student_size, student_size),
        teacher_scale=(teacher_size, teacher_size)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(
        type='PackActionInputs',
        collect_keys=('imgs', 'teacher_imgs'),
        meta_keys=meta_keys)
]
val_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSparseSampleFrames',
        window=window,
        stride=stride,
        clip_len=clip_len,
        with_teacher=False,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(
        type='Resize',
        scale=(student_size, student_size),
        keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        split_file=split_file_train,
        data_prefix=dict(video=video_root),
        properties=properties,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        split_file=split_file_test,
        data_prefix=dict(video=video_root),
        properties=properties,
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='DivePropertyAccuracy'),
    dict(type='SpearmanCorrelation')
]
test_evaluator = val_evaluator
