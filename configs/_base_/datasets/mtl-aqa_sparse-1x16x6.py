# MTL-AQA (Parmar & Morris, CVPR 2019) in its released layout, for
# HalluciNet's long-term set-up: a dive is cut to its first 96 frames and the
# student sees every 16th frame, 6 frames (1x16x6: 1 frame per segment, 16
# apart, 6 segments), each hallucinating the 16-frame clip that starts at it
# (HalluSparseSampleFrames); an LSTM aggregates the 6 frames.
#
# The release (github.com/ParitoshParmar/MTL-AQA):
#   data/mtl_aqa/whole_videos/{event:02d}.mp4               competition videos
#   data/mtl_aqa/Ready_2_Use/MTL-AQA_split_0_data/
#       final_annotations_dict.pkl   {(event, clip): {start_frame, end_frame,
#                                     position, armstand, rotation_type, ss_no,
#                                     tw_no, difficulty, final_score, ...}}
#       train_split_0.pkl / test_split_0.pkl       lists of (event, clip)
# Every dive lies inside its event's video (start_frame..end_frame); the
# sampler reads that window itself, so it comes after DecordInit. The release
# has no validation split: validation is the test split, as the paper reports.
dataset_type = 'MTLAQADataset'
data_root = 'data/mtl_aqa'
ann_root = f'{data_root}/Ready_2_Use/MTL-AQA_split_0_data'
ann_file = f'{ann_root}/final_annotations_dict.pkl'
split_file_train = f'{ann_root}/train_split_0.pkl'
split_file_test = f'{ann_root}/test_split_0.pkl'
video_root = f'{data_root}/whole_videos'

# The released labels (MTLAQADataset's MTL_AQA_PROPERTIES) and the score;
# recognition-only configs set with_score=False, AQA-only properties=None.
properties = dict(position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8)
with_score = True
window = 96
stride = 16
clip_len = 16
student_size = 227
teacher_size = 112
meta_keys = ('img_shape', 'video_id', 'dive_labels', 'score')

train_pipeline = [
    dict(type='HalluDecordInit'),
    dict(
        type='HalluSparseSampleFrames',
        window=window,
        stride=stride,
        clip_len=clip_len),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomCrop', size=student_size),
    # A mirrored dive keeps its properties and score.
    dict(type='Flip', flip_ratio=0.5),
    # Crop and flip above are shared; each view gets its own size here.
    dict(type='HalluSplitViews', teacher_scale=(teacher_size, teacher_size)),
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
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=student_size),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        split_file=split_file_train,
        data_prefix=dict(video=video_root),
        properties=properties,
        with_score=with_score,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file,
        split_file=split_file_test,
        data_prefix=dict(video=video_root),
        properties=properties,
        with_score=with_score,
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='DivePropertyAccuracy'),
    dict(type='SpearmanCorrelation')
]
test_evaluator = val_evaluator
