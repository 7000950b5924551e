"""HalluVideoDataset's unlabelled videos (``unlabelled=True``): path-only
lists in training, labelled lists read without their labels
(``ignore_labels``), the same line checks as labelled lists, and samples
marked ``labelled=False`` for the model."""
import pytest
from mmaction.registry import DATASETS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401

init_default_scope('mmaction')

PIPELINE = [
    dict(type='HalluDecordInit'),
    dict(type='HalluSampleFrames', clip_len=8, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='HalluSplitViews', teacher_scale=(16, 16)),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
]


def build(ann_file, video_dataset, **kwargs):
    return DATASETS.build(
        dict(
            type='HalluVideoDataset',
            ann_file=str(ann_file),
            data_prefix=dict(video=video_dataset['video_dir']),
            pipeline=PIPELINE,
            **kwargs))


def names(video_dataset):
    with open(video_dataset['ann_file']) as f:
        return [line.split()[0] for line in f.read().splitlines()]


def test_unlabelled_list_trains_and_marks_its_samples(tmp_path,
                                                      video_dataset):
    ann = tmp_path / 'unlabelled.txt'
    ann.write_text('\n'.join(names(video_dataset)) + '\n\n')
    # A path-only list is refused for training unless it is declared
    # unlabelled.
    with pytest.raises(ValueError, match='only a test dataset may be '
                       'unlabelled'):
        build(ann, video_dataset)
    data = build(ann, video_dataset, unlabelled=True)
    assert len(data) == video_dataset['num_videos']
    sample = data[0]['data_samples']
    assert sample.metainfo['labelled'] is False
    assert sample.gt_labels.item.item() == -1
    assert sample.metainfo['filename'].endswith(names(video_dataset)[0])
    # Labelled samples are not marked: the model's default is labelled.
    labelled = build(video_dataset['ann_file'], video_dataset)
    assert 'labelled' not in labelled[0]['data_samples'].metainfo


def test_labelled_list_needs_ignore_labels_and_its_labels_are_not_read(
        tmp_path, video_dataset):
    with pytest.raises(ValueError) as err:
        build(video_dataset['ann_file'], video_dataset, unlabelled=True)
    text = str(err.value)
    assert video_dataset['ann_file'] in text and 'line 1:' in text
    assert 'ignore_labels=True' in text
    # Labels that could not even be parsed: never read.
    ann = tmp_path / 'garbage_labels.txt'
    ann.write_text('\n'.join(f'{n} not-a-label 99'
                             for n in names(video_dataset)) + '\n')
    data = build(ann, video_dataset, unlabelled=True, ignore_labels=True)
    assert {data.get_data_info(i)['label']
            for i in range(len(data))} == {-1}
    assert data[1]['data_samples'].metainfo['labelled'] is False


def test_unlabelled_lists_get_the_same_file_checks(tmp_path, video_dataset):
    ann = tmp_path / 'unlabelled.txt'
    ann.write_text('\n'.join(names(video_dataset) + ['missing.mp4']) + '\n')
    with pytest.raises(ValueError, match=r'1 of 9 videos not found .*:\n  '
                       r'line 9: .*missing.mp4'):
        build(ann, video_dataset, unlabelled=True)


def test_ignore_labels_needs_unlabelled(video_dataset):
    with pytest.raises(ValueError, match='ignore_labels=True needs '
                       'unlabelled=True'):
        build(video_dataset['ann_file'], video_dataset, ignore_labels=True)
