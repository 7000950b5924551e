# HalluciNet for dynamic scene recognition on YUP++ (20 classes), the
# static-camera half (see _base_/datasets/yup++-static-camera_two-view.py
# for why and the list format): the UCF set-up with the paper's lambda = 1
# for dynamic scenes. For the moving-camera half point data_root at
# data/yup++/camera_moving and the lists at yup++_moving_*.
_base_ = [
    '_base_/models/hallucinet_vgg11-bn_resnext101.py',
    '_base_/datasets/yup++-static-camera_two-view.py',
    '_base_/schedules/adam_1e-4_30e.py', '_base_/default_runtime.py'
]

data_root = 'data/yup++/camera_stationary'
ann_file_train = 'data/yup++/yup++_static_train_list_videos.txt'
ann_file_val = 'data/yup++/yup++_static_test_list_videos.txt'
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'
num_classes = 20

model = dict(
    teacher=dict(checkpoint=teacher_ckpt),
    hallu_head=dict(loss_hallu=dict(loss_weight=1.0)),
    cls_head=dict(num_classes=num_classes))

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
test_dataloader = val_dataloader
