# YUP++ dynamic scenes (Feichtenhofer et al., CVPR 2017; 20 classes), the
# static-camera half, with the UCF-static two-view pipeline: one student
# frame, the first of the 16-frame teacher clip; at test time the clip at
# the video's centre.
#
# YUP++ comes as camera_stationary/<class>/<video>.mp4 and
# camera_moving/<class>/<video>.mp4, each half with its own train/test
# split. We use the static-camera half: with the camera still, the only
# motion is the scene's own dynamics (water, fire, traffic, crowds), which is
# what the hallucinated spatiotemporal representation is meant to add to a
# single frame; on the moving-camera half the teacher's features also encode
# camera motion. For the other half, use `camera = 'moving'` (and
# camera_moving/ and the yup++_moving_* lists in a top-level config).
# Annotation files are mmaction2 video lists `<class>/<video>.mp4 <label>`
# with 0-based labels in alphabetical class order.
_base_ = ['./ucf101-static_two-view.py']

camera = 'static'
camera_dirs = dict(static='camera_stationary', moving='camera_moving')
data_root = f'data/yup++/{camera_dirs[camera]}'
ann_file_train = f'data/yup++/yup++_{camera}_train_list_videos.txt'
ann_file_val = f'data/yup++/yup++_{camera}_test_list_videos.txt'
ann_file_test = ann_file_val

train_dataloader = dict(
    dataset=dict(
        num_classes=20,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        num_classes=20,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root)))
test_dataloader = val_dataloader
