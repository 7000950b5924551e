# HalluciNet (fused) that also hallucinates on unlabelled videos: every batch
# holds 16 labelled `train` videos (classification + hallucination) and 16
# of the 1600 `teacher_train` videos, used WITHOUT their labels
# (hallucination only; ignore_labels: the label column is never read). An
# epoch is still one pass over the 240 labelled videos. Written out here;
# `tools/train.py CONFIG --unlabelled LIST` makes the same config from any
# HalluciNet config.
_base_ = ['./hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py']
video_root = {{_base_.video_root}}
# (mmengine cannot put a base variable into an f-string.)
ann_file_unlabelled = 'data/demo/teacher_train_list.txt'
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
                data_prefix=dict(video=video_root),
                pipeline={{_base_.train_pipeline}},
                unlabelled=True,
                ignore_labels=True)
        ]))
