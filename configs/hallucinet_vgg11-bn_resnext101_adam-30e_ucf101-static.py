# HalluciNet (Parmar & Morris, Signals 2021), the paper's main set-up on
# UCF101, static protocol (UCF-static): a VGG11-bn student sees one 227x227
# frame and hallucinates the 2048-d representation a frozen Kinetics 3D
# ResNeXt-101 computes from the 16 frames (112x112) that start there;
# lambda = 50, Adam lr 1e-4. At test time one frame, the first of the clip
# at the video's centre; only the student runs.
#
# Data: the official split lists converted to mmaction2 video lists with
#   python tools/convert_split_list.py ucf101 data/ucf101/ucfTrainTestlist \
#       --out-dir data/ucf101 --check-videos data/ucf101/videos
# Teacher: Hara et al.'s resnext-101-kinetics.pth converted with
#   python tools/convert_hara_checkpoint.py resnext-101-kinetics.pth \
#       checkpoints/resnext101_hara_kinetics.pth
_base_ = [
    '_base_/models/hallucinet_vgg11-bn_resnext101.py',
    '_base_/datasets/ucf101-static_two-view.py',
    '_base_/schedules/adam_1e-4_30e.py', '_base_/default_runtime.py'
]

data_root = 'data/ucf101/videos'
split = 1  # official splits 1, 2, 3
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_videos.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'
teacher_ckpt = 'checkpoints/resnext101_hara_kinetics.pth'

model = dict(teacher=dict(checkpoint=teacher_ckpt))

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
test_dataloader = val_dataloader
