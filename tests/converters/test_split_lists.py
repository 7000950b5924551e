"""Official UCF101 / HMDB51 split lists -> mmaction2 video lists, on small
files written in exactly the official formats."""
import importlib.util
import os
import os.path as osp

import pytest
from conftest import REPO, run_tool

from hallucinet_plugin.converters.split_lists import (
    convert_split_lists,
    parse_hmdb51_split,
    parse_ucf101_split,
    read_class_index,
)

UCF_CLASSES = ['ApplyEyeMakeup', 'Basketball', 'HandstandPushups']
HMDB_CLASSES = ['brush_hair', 'cartwheel', 'fall_floor']


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert_split_list = _load_tool('convert_split_list')


def write(path, lines, newline='\r\n'):
    """The official UCF101 lists have CRLF endings and a trailing blank."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', newline='') as f:
        f.write(newline.join(lines) + newline)


def ucf_video(name, group, clip, spelling=None):
    return f'{name}/v_{spelling or name}_g{group:02d}_c{clip:02d}.avi'


def make_ucf(root):
    """classInd.txt, trainlist0k.txt (with 1-based ids) and testlist0k.txt
    (without) for three splits of three classes; split k tests on group
    k, trains on groups 4 and 5. HandstandPushups videos are spelt
    HandStandPushups, as in UCF101."""
    ann = osp.join(root, 'ucfTrainTestlist')
    write(
        osp.join(ann, 'classInd.txt'),
        [f'{i + 1} {name}' for i, name in enumerate(UCF_CLASSES)])
    spell = {'HandstandPushups': 'HandStandPushups'}
    for k in (1, 2, 3):
        train, test = [], []
        for i, name in enumerate(UCF_CLASSES):
            for group in (4, 5):
                train.append(
                    f'{ucf_video(name, group, 1, spell.get(name))} {i + 1}')
            test.append(ucf_video(name, k, 1, spell.get(name)))
        write(osp.join(ann, f'trainlist0{k}.txt'), train)
        write(osp.join(ann, f'testlist0{k}.txt'), test)
    return ann


def hmdb_video(name, i):
    return f'{name}_clip_{i}_u_nm_np1_fr_med_{i}.avi'


def make_hmdb(root):
    """<class>_test_splitk.txt with 1 = train, 2 = test, 0 = unused (and
    the official trailing blank on each line); four videos per class:
    video k - 1 is the test video of split k, video 3 is never used."""
    ann = osp.join(root, 'testTrainMulti_7030_splits')
    for name in HMDB_CLASSES:
        for k in (1, 2, 3):
            usage = ['2' if i == k - 1 else '1' for i in range(3)] + ['0']
            write(
                osp.join(ann, f'{name}_test_split{k}.txt'),
                [f'{hmdb_video(name, i)} {u} ' for i, u in enumerate(usage)],
                newline='\n')
    return ann


def read_list(path):
    with open(path) as f:
        return [line.split() for line in f.read().splitlines()]


def touch_videos(root, videos):
    for video in videos:
        os.makedirs(osp.dirname(osp.join(root, video)), exist_ok=True)
        open(osp.join(root, video), 'wb').close()


def test_ucf101_split(tmp_path):
    ann = make_ucf(str(tmp_path))
    assert read_class_index(osp.join(ann, 'classInd.txt')) == UCF_CLASSES
    train, val = parse_ucf101_split(ann, 2)
    assert train[0] == ('ApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi', 0)
    assert [label for _, label in train] == [0, 0, 1, 1, 2, 2]
    # The label comes from the folder, whatever the file name's spelling.
    assert val == [('ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi', 0),
                   ('Basketball/v_Basketball_g02_c01.avi', 1),
                   ('HandstandPushups/v_HandStandPushups_g02_c01.avi', 2)]


def test_hmdb51_split(tmp_path):
    ann = make_hmdb(str(tmp_path))
    train, val = parse_hmdb51_split(ann, 3)
    assert val == [(f'{name}/{hmdb_video(name, 2)}', i)
                   for i, name in enumerate(HMDB_CLASSES)]
    assert train == [(f'{name}/{hmdb_video(name, v)}', i)
                     for i, name in enumerate(HMDB_CLASSES) for v in (0, 1)]
    # Unused (0) videos are in neither list.
    assert not any(hmdb_video(n, 3) in v for n in HMDB_CLASSES
                   for v, _ in train + val)
    # A class index fixes other labels.
    _, val = parse_hmdb51_split(ann, 1, classes=HMDB_CLASSES[::-1])
    assert val[0] == (f'fall_floor/{hmdb_video("fall_floor", 0)}', 0)


@pytest.mark.parametrize('dataset', ['ucf101', 'hmdb51'])
def test_convert_writes_mmaction2_lists(tmp_path, dataset):
    make = make_ucf if dataset == 'ucf101' else make_hmdb
    ann = make(str(tmp_path))
    out = str(tmp_path / 'out')
    result = convert_split_lists(dataset, ann, out)
    assert len(result['classes']) == 3
    assert sorted(result['files']) == [(k, p) for k in (1, 2, 3)
                                       for p in ('train', 'val')]
    for k in (1, 2, 3):
        train = read_list(osp.join(out, f'{dataset}_train_split_{k}_'
                                   'videos.txt'))
        val = read_list(osp.join(out, f'{dataset}_val_split_{k}_videos.txt'))
        assert len(train) == 6 and len(val) == 3
        assert all(len(line) == 2 for line in train + val)
        assert sorted({int(label) for _, label in val}) == [0, 1, 2]
        assert not {v for v, _ in train} & {v for v, _ in val}
        assert result['files'][k, 'val'] == (osp.join(
            out, f'{dataset}_val_split_{k}_videos.txt'), 3)


def test_check_videos(tmp_path):
    ann = make_ucf(str(tmp_path))
    videos = str(tmp_path / 'videos')
    train, val = parse_ucf101_split(ann, 1)
    touch_videos(videos, [v for v, _ in train + val][1:])
    out = str(tmp_path / 'out')
    with pytest.raises(FileNotFoundError, match=r'1 of the 6 videos of '
                       r'ucf101 split 1 train are not under .*v_ApplyEye'):
        convert_split_lists('ucf101', ann, out, splits=[1], video_root=videos)
    assert not osp.exists(out)  # nothing written on error
    touch_videos(videos, [train[0][0]])
    convert_split_lists('ucf101', ann, out, splits=[1], video_root=videos)
    assert osp.isfile(osp.join(out, 'ucf101_val_split_1_videos.txt'))


def test_ucf101_errors(tmp_path):
    ann = make_ucf(str(tmp_path))
    trainlist = osp.join(ann, 'trainlist01.txt')
    testlist = osp.join(ann, 'testlist01.txt')
    classind = osp.join(ann, 'classInd.txt')

    write(testlist, ['Juggling/v_Juggling_g01_c01.avi'])
    with pytest.raises(ValueError, match=r"testlist01.txt:1: unknown class "
                       r"'Juggling' \(not in .*classInd.txt\)"):
        parse_ucf101_split(ann, 1)
    write(testlist, ['Basketball/v_Basketball_g01_c01.avi 2'])
    with pytest.raises(ValueError, match=r'testlist01.txt:1: expected '
                       r'"<class>/<video>" only'):
        parse_ucf101_split(ann, 1)

    write(trainlist, ['Basketball/v_Basketball_g01_c01.avi 3'])
    with pytest.raises(ValueError, match=r'trainlist01.txt:1: .* has class '
                       r"id 3 but its class 'Basketball' is 2"):
        parse_ucf101_split(ann, 1)
    write(trainlist, ['Basketball/v_Basketball_g01_c01.avi two'])
    with pytest.raises(ValueError, match=r'trainlist01.txt:1: expected'):
        parse_ucf101_split(ann, 1)
    write(trainlist, ['v_Basketball_g01_c01.avi 2'])
    with pytest.raises(ValueError, match=r'expected "<class>/<video>"'):
        parse_ucf101_split(ann, 1)
    write(trainlist, ['Basketball/a.avi 2', 'Basketball/a.avi 2'])
    with pytest.raises(ValueError, match=r':2: Basketball/a.avi is listed '
                       r'twice \(first on line 1\)'):
        parse_ucf101_split(ann, 1)

    write(classind, ['1 ApplyEyeMakeup', '3 Basketball'])
    with pytest.raises(ValueError, match=r'class ids must be 1..2'):
        read_class_index(classind)
    write(classind, ['1 ApplyEyeMakeup', '2 ApplyEyeMakeup'])
    with pytest.raises(ValueError, match=r"class 'ApplyEyeMakeup' given "
                       'twice'):
        read_class_index(classind)
    write(classind, ['ApplyEyeMakeup 1'])
    with pytest.raises(ValueError, match=r'classInd.txt:1: expected'):
        read_class_index(classind)
    write(trainlist, ['Basketball/a.avi 2'])
    os.remove(testlist)
    with pytest.raises(FileNotFoundError, match='testlist01.txt'):
        parse_ucf101_split(ann, 1, classes=UCF_CLASSES)


def test_hmdb51_errors(tmp_path):
    ann = make_hmdb(str(tmp_path))
    split_file = osp.join(ann, 'cartwheel_test_split2.txt')
    write(split_file, ['a.avi 1', 'b.avi 3'], newline='\n')
    with pytest.raises(ValueError, match=r'cartwheel_test_split2.txt:2: '
                       r'expected "<video> 0\|1\|2"'):
        parse_hmdb51_split(ann, 2)
    write(split_file, ['a.avi 1', 'a.avi 2'], newline='\n')
    with pytest.raises(ValueError, match='a.avi is listed twice'):
        parse_hmdb51_split(ann, 2)
    with pytest.raises(ValueError, match=r"unknown classes \['fall_floor'\]"):
        parse_hmdb51_split(ann, 1, classes=HMDB_CLASSES[:2])
    with pytest.raises(FileNotFoundError, match=r"classes \['dive'\]"):
        parse_hmdb51_split(ann, 1, classes=HMDB_CLASSES + ['dive'])
    os.remove(split_file)
    with pytest.raises(ValueError, match=r"'cartwheel': \[2\]"):
        parse_hmdb51_split(ann, 1)
    with pytest.raises(FileNotFoundError, match='no <class>_test_split'):
        parse_hmdb51_split(str(tmp_path), 1)


def test_cli(tmp_path, capsys):
    ann = make_hmdb(str(tmp_path))
    videos = str(tmp_path / 'videos')
    out = str(tmp_path / 'lists')
    args = ['hmdb51', ann, '--out-dir', out, '--splits', '1', '2',
            '--check-videos', videos]
    # In process for the error (one subprocess is enough to test the
    # entry point itself).
    assert convert_split_list.main(args) == 1
    assert 'convert_split_list: error: video folder not found' in \
        capsys.readouterr().err
    assert not osp.exists(out)
    train, val = parse_hmdb51_split(ann, 1)
    touch_videos(videos, [v for v, _ in train + val])
    proc = run_tool('tools/convert_split_list.py', *args)
    assert 'hmdb51: 3 classes' in proc.stdout
    assert 'split 2 val: 3 videos' in proc.stdout
    assert sorted(os.listdir(out)) == [
        f'hmdb51_{p}_split_{k}_videos.txt' for p in ('train', 'val')
        for k in (1, 2)
    ]
    assert read_list(osp.join(out, 'hmdb51_val_split_1_videos.txt')) == [
        [f'{name}/{hmdb_video(name, 0)}', str(i)]
        for i, name in enumerate(HMDB_CLASSES)
    ]
