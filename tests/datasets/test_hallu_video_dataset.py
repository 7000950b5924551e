"""HalluVideoDataset's unlabelled videos (``unlabelled=True``): path-only
lists in training, labelled lists read without their labels
(``ignore_labels``), the same line checks as labelled lists, and samples
marked ``labelled=False`` for the model; every ``delimiter`` of mmaction2's
``VideoDataset``, with paths containing spaces."""
import os.path as osp
import shutil

import pytest
import torch
from mmaction.datasets import VideoDataset
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
    kwargs.setdefault('data_prefix', dict(video=video_dataset['video_dir']))
    return DATASETS.build(
        dict(
            type='HalluVideoDataset',
            ann_file=str(ann_file),
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


# Paths with spaces, as in UCF101's or HMDB51's folder and file names.
SPACED = ['Apply Eye Makeup/clip 0.mp4', 'Apply Eye Makeup/clip 1.mp4',
          'Archery/clip 2.mp4']


@pytest.fixture
def spaced(tmp_path, video_dataset):
    """Copies of real videos under paths with spaces (the folder too)."""
    root = tmp_path / 'my videos'
    for i, name in enumerate(SPACED):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(
            osp.join(video_dataset['video_dir'], f'video_{i:03d}.mp4'),
            root / name)
    return dict(video=str(root))


def samples(data):
    """``(filename, label)`` of each sample; a multi-label sample's label
    as its classes (``VideoDataset`` gives a one-hot tensor)."""
    out = []
    for i in range(len(data)):
        info = data.get_data_info(i)
        label = info['label']
        if isinstance(label, torch.Tensor):
            label = label.nonzero().flatten().tolist()
        out.append((info['filename'], label))
    return out


def test_tab_list_with_spaces_in_paths_loads_the_videos(
        tmp_path, video_dataset, spaced):
    ann = tmp_path / 'list.txt'
    ann.write_text('Apply Eye Makeup/clip 0.mp4\t1\n\n'
                   'Archery/clip 2.mp4\t3\n')
    data = build(ann, video_dataset, data_prefix=spaced, delimiter='\t',
                 num_classes=4)
    assert samples(data) == [
        (osp.join(spaced['video'], SPACED[0]), 1),
        (osp.join(spaced['video'], SPACED[2]), 3),
    ]
    assert data.get_data_info(1)['ann_line'] == 3
    # The video behind the spaced path is decoded, both views: the frames
    # of the copied video (video_002.mp4) read under its own name.
    packed = data[1]
    original = build(video_dataset['ann_file'], video_dataset)[2]
    for view in ('imgs', 'teacher_imgs'):
        assert packed['inputs'][view].numel() > 0
        assert torch.equal(packed['inputs'][view],
                           original['inputs'][view])
    sample = packed['data_samples']
    assert sample.metainfo['filename'] == osp.join(spaced['video'],
                                                   SPACED[2])
    assert sample.metainfo['ann_line'] == 3
    assert sample.gt_labels.item.item() == 3


def test_tab_lists_unlabelled_and_with_ignored_labels(
        tmp_path, video_dataset, spaced):
    expected = [(osp.join(spaced['video'], name), -1) for name in SPACED]
    ann = tmp_path / 'unlabelled.txt'
    ann.write_text('\n'.join(SPACED) + '\n')
    data = build(ann, video_dataset, data_prefix=spaced, delimiter='\t',
                 unlabelled=True)
    assert samples(data) == expected
    assert data[2]['data_samples'].metainfo['labelled'] is False
    # A labelled tab list read as unlabelled: only the path column counts,
    # spaces and all; the labels are not parsed.
    ann = tmp_path / 'ignored.txt'
    ann.write_text(''.join(f'{name}\tnot a label\t9 9\n' for name in SPACED))
    data = build(ann, video_dataset, data_prefix=spaced, delimiter='\t',
                 unlabelled=True, ignore_labels=True)
    assert samples(data) == expected
    assert data[0]['data_samples'].metainfo['labelled'] is False


def test_every_delimiter_of_video_dataset_gives_its_samples(tmp_path):
    """The samples of ``VideoDataset`` for each delimiter, labelled,
    multi-label and path-only; a column may carry blanks around it."""
    spaced = ['a b/c d.mp4', 'e f.mp4']
    plain = ['a/c.mp4', 'e.mp4']
    cases = [
        # (delimiter, separator written, paths)
        (' ', ' ', plain),
        (None, '\t', plain),
        ('\t', '\t', spaced),
        (',', ',', spaced),
        (';', ';', spaced),
        (' | ', ' | ', spaced),
        ('  ', '  ', spaced),
    ]
    for delimiter, sep, paths in cases:
        lists = {
            'labelled': ([f'{paths[0]}{sep}2', f'{paths[1]}{sep}0'], {}),
            'multi': ([f'{paths[0]}{sep}2{sep}3', f'{paths[1]}{sep}0'],
                      dict(multi_class=True)),
            'unlabelled': (paths, dict(test_mode=True)),
        }
        for kind, (lines, kwargs) in lists.items():
            ann = tmp_path / f'{kind}.txt'
            ann.write_text('\n'.join(lines) + '\n')
            cfg = dict(
                ann_file=str(ann),
                pipeline=[],
                data_prefix=dict(video='/videos'),
                num_classes=4,
                delimiter=delimiter,
                **kwargs)
            ours = DATASETS.build(
                dict(type='HalluVideoDataset', check_files=False, **cfg))
            theirs = VideoDataset(**cfg)
            assert samples(ours) == samples(theirs), (delimiter, kind)
            assert samples(ours)[0][0] == f'/videos/{paths[0]}', \
                (delimiter, kind)
    # Blanks around a column (an aligned list) are not part of it.
    ann = tmp_path / 'aligned.txt'
    ann.write_text('a b.mp4  \t 1\nc.mp4\t0\n')
    data = DATASETS.build(
        dict(
            type='HalluVideoDataset',
            ann_file=str(ann),
            pipeline=[],
            data_prefix=dict(video=''),
            check_files=False,
            delimiter='\t'))
    assert samples(data) == [('a b.mp4', 1), ('c.mp4', 0)]


def test_tab_list_refuses_bad_lines_naming_file_and_line(
        tmp_path, video_dataset, spaced):
    ann = tmp_path / 'bad.txt'
    ann.write_text('Apply Eye Makeup/clip 0.mp4\t1\n'
                   'Apply Eye Makeup/clip 1.mp4\t1\t2\n'
                   'Archery/clip 2.mp4\tone\n'
                   'Archery/clip 2.mp4\t7\n')
    with pytest.raises(ValueError) as err:
        build(ann, video_dataset, data_prefix=spaced, delimiter='\t',
              num_classes=4)
    text = str(err.value)
    assert f'annotation file {ann}: 3 bad line(s)' in text
    assert 'line 2: expected "<path> <label>", got 3 columns:' in text
    assert "line 3: label 'one' is not an integer" in text
    assert 'line 4: label 7 >= num_classes=4' in text
    # The delimiter is set: no advice to set it.
    assert 'delimiter' not in text
    # A line starting with a non-blank delimiter has no path.
    ann.write_text('Archery/clip 2.mp4,1\n,2\n')
    with pytest.raises(ValueError, match=r'1 bad line\(s\):\n  line 2: '
                       "empty path: ',2'"):
        build(ann, video_dataset, data_prefix=spaced, delimiter=',')
    # A path-only tab list: a second column is refused, with the line.
    ann.write_text('Archery/clip 2.mp4\nApply Eye Makeup/clip 0.mp4\t1\n')
    with pytest.raises(ValueError, match=r'line 2: expected "<path>" in an '
                       'unlabelled list, got 2 columns'):
        build(ann, video_dataset, data_prefix=spaced, delimiter='\t',
              unlabelled=True)


@pytest.mark.parametrize('delimiter', ['', 0])
def test_unusable_delimiter_is_refused_naming_the_file(
        tmp_path, video_dataset, delimiter):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\n')
    with pytest.raises(ValueError, match=f'{ann}: delimiter must be a '
                       f'non-empty string or None, got {delimiter!r}'):
        build(ann, video_dataset, delimiter=delimiter)
