# HMDB51, static protocol (the paper's HMDB-static): the UCF-static two-view
# pipeline (student frame = first frame of the 16-frame teacher clip; at test
# time the clip sits at the video's centre) on HMDB51's 51 classes.
# Annotation files are mmaction2 video lists (`brush_hair/April_09_brush_hair_
# u_nm_np1_ba_goo_0.avi 0`); convert the official testTrainMulti_7030_splits
# with tools/convert_split_list.py (docs/user_guides/paper_setups.md).
_base_ = ['./ucf101-static_two-view.py']

data_root = 'data/hmdb51/videos'
split = 1
ann_file_train = f'data/hmdb51/hmdb51_train_split_{split}_videos.txt'
ann_file_val = f'data/hmdb51/hmdb51_val_split_{split}_videos.txt'
ann_file_test = ann_file_val

train_dataloader = dict(
    dataset=dict(
        num_classes=51,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        num_classes=51,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root)))
test_dataloader = val_dataloader
