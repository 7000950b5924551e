# HalluciNet on HMDB51, static protocol (the paper's HMDB-static): the UCF
# set-up (VGG11-bn student, frozen Kinetics 3D-ResNeXt-101 teacher, lambda
# 50, Adam lr 1e-4) on HMDB51's 51 classes.
#
# Data: the official testTrainMulti_7030_splits converted with
#   python tools/convert_split_list.py hmdb51 \
#       data/hmdb51/testTrainMulti_7030_splits --out-dir data/hmdb51 \
#       --check-videos data/hmdb51/videos
_base_ = [
    '_base_/models/hallucinet_vgg11-bn_resnext101.py',
    '_base_/datasets/hmdb51-static_two-view.py',
    '_base_/schedules/adam_1e-4_30e.py', '_base_/default_runtime.py'
]

data_root = 'data/hmdb51/videos'
split = 1  # official splits 1, 2, 3
ann_file_train = f'data/hmdb51/hmdb51_train_split_{split}_videos.txt'
ann_file_val = f'data/hmdb51/hmdb51_val_split_{split}_videos.txt'
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
num_classes = 51

model = dict(
    teacher=dict(checkpoint=teacher_ckpt),
    cls_head=dict(num_classes=num_classes))

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
test_dataloader = val_dataloader
