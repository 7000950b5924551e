# HalluciNet on UCF101 (split 1, labelled) that also hallucinates on the
# training videos of Kinetics-400, unlabelled: every batch holds 16 UCF101
# frames (classification + hallucination) and 16 Kinetics frames
# (hallucination only; the Kinetics labels are never read). The teacher,
# Hara et al.'s 3D-ResNeXt-101, was trained on Kinetics, so its targets are
# at home there; an epoch is still one pass over UCF101's labelled split,
# and each epoch hallucinates on a fresh stretch of Kinetics.
#
# Data: UCF101 as in the base config; Kinetics-400 with mmaction2's
# tools/data/kinetics scripts (the `<path> <label>` video list is read
# without its labels). Written out here; the same set-up from any HalluciNet
# config: tools/train.py CONFIG --unlabelled LIST --unlabelled-prefix DIR
# --unlabelled-ignore-labels. With the feature bank, extract the Kinetics
# videos too: tools/extract_teacher_features.py CONFIG --out BANK (this
# config reads both datasets' videos).
_base_ = ['./hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']
ann_file_unlabelled = 'data/kinetics400/kinetics400_train_list_videos.txt'
unlabelled_root = 'data/kinetics400/videos_train'
num_labelled, num_unlabelled = 16, 16

train_dataloader = dict(
    batch_size=num_labelled + num_unlabelled,
    sampler=dict(
        _delete_=True,
        type='MixedSourceSampler',
        batch_size=num_labelled + num_unlabelled,
        source_ratio=[num_labelled, num_unlabelled],
        shuffle=True),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            {{_base_.train_dataloader.dataset}},
            dict(
                type='HalluVideoDataset',
                ann_file=ann_file_unlabelled,
                data_prefix=dict(video=unlabelled_root),
                pipeline={{_base_.train_pipeline}},
                unlabelled=True,
                ignore_labels=True)
        ]))
