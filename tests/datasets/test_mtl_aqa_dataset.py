import copy
import csv
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmaction.registry import DATASETS
from mmengine.registry import DefaultScope

import hallucinet_plugin.datasets.mtl_aqa_dataset as mtl_aqa_dataset
from hallucinet_plugin.datasets.mtl_aqa_dataset import (
    DIVE_LABEL_MAPS,
    MTL_AQA_PROPERTIES,
    load_plain_pickle,
)
from tests.utils.forged_pickles import (
    FORGED,
    Reduce,
    plain_name_forged_state,
    scalar_of,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

NUM_FRAMES = 20  # per event video; frame i has grey level 12 * i
# The released layout: dict keyed by (event, clip), all fields per dive.
ANNOS = {
    (1, 1): dict(primary_view=0, start_frame=2, end_frame=9, position=1,
                 difficulty=3.2, armstand=0, rotation_type=2, ss_no=5,
                 tw_no=0, final_score=76.8),
    (1, 2): dict(primary_view=0, start_frame=11, end_frame=18, position=2,
                 difficulty=3.0, armstand=1, rotation_type=0, ss_no=3,
                 tw_no=4, final_score=42.0),
    (2, 1): dict(primary_view=0, start_frame=0, end_frame=5, position=0,
                 difficulty=3.6, armstand=0, rotation_type=3, ss_no=9,
                 tw_no=7, final_score=91.35),
}
TRAIN, TEST = [(2, 1), (1, 2)], [(1, 1)]
FIELDS = ('event', 'clip', 'start_frame', 'end_frame', 'position',
          'armstand', 'rotation_type', 'ss_no', 'tw_no', 'final_score',
          'difficulty')


def _dump(obj, path, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)
    return str(path)


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    """Event videos and ffmpeg-style frame folders, as the release gives."""
    root = tmp_path_factory.mktemp('mtl_aqa_media')
    for event in (1, 2):
        (root / 'whole_videos').mkdir(exist_ok=True)
        frame_dir = root / 'whole_videos_frames' / f'{event:02d}'
        frame_dir.mkdir(parents=True)
        writer = cv2.VideoWriter(
            str(root / 'whole_videos' / f'{event:02d}.mp4'),
            cv2.VideoWriter_fourcc(*'mp4v'), 25, (32, 32))
        for i in range(NUM_FRAMES):
            img = np.full((32, 32, 3), 12 * i, np.uint8)
            writer.write(img)
            # ffmpeg's %06d.jpg numbers frames from 1.
            cv2.imwrite(str(frame_dir / f'{i + 1:06d}.jpg'), img)
        writer.release()
    return root


@pytest.fixture
def release(tmp_path):
    _dump(ANNOS, tmp_path / 'final_annotations_dict.pkl')
    _dump(TRAIN, tmp_path / 'train_split_0.pkl')
    _dump(TEST, tmp_path / 'test_split_0.pkl')
    return tmp_path


def _build(**kwargs):
    """Build as a config would, with mmaction's scope for its transforms."""
    cfg = dict(
        type='MTLAQADataset',
        ann_file='final_annotations_dict.pkl',
        pipeline=[],
        data_prefix=dict(video='whole_videos'))
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmaction'):
        return DATASETS.build(cfg)


def test_reads_release_split_in_split_order(release):
    ds = _build(data_root=str(release), split_file='train_split_0.pkl')
    assert len(ds) == 2
    first = ds[0]
    assert first['video_id'] == '02_01'
    assert (first['event'], first['clip']) == (2, 1)
    assert first['filename'] == osp.join(str(release), 'whole_videos',
                                         '02.mp4')
    assert first['dive_labels'] == dict(
        position=0, armstand=0, rotation_type=3, ss_no=9, tw_no=7)
    assert first['score'] == pytest.approx(91.35)
    assert first['difficulty'] == pytest.approx(3.6)
    second = ds[1]
    # The dive's window: decoders count video frames from 0.
    assert (second['start_index'], second['total_frames']) == (11, 8)
    assert (second['start_frame'], second['end_frame']) == (11, 18)
    test = _build(data_root=str(release), split_file='test_split_0.pkl')
    assert [d['video_id'] for d in test] == ['01_01']


def test_no_split_file_reads_every_dive_in_key_order(release):
    ds = _build(data_root=str(release))
    assert [d['video_id'] for d in ds] == ['01_01', '01_02', '02_01']


def test_decoded_video_frames_lie_inside_the_dive(release, media):
    ds = _build(
        ann_file=str(release / 'final_annotations_dict.pkl'),
        split_file=str(release / 'test_split_0.pkl'),
        data_prefix=dict(video=str(media / 'whole_videos')),
        pipeline=[
            # Sample before DecordInit, which resets total_frames to the
            # whole video's length.
            dict(type='SampleFrames', clip_len=1, num_clips=4,
                 test_mode=True),
            dict(type='DecordInit'),
            dict(type='DecordDecode'),
            dict(type='FormatShape', input_format='NCHW'),
            dict(type='PackActionInputs',
                 meta_keys=('video_id', 'dive_labels', 'score')),
        ])
    raw = ds.get_data_info(0)
    results = ds.pipeline(copy.deepcopy(raw))
    sample = results['data_samples']
    assert sample.dive_labels == dict(
        position=1, armstand=0, rotation_type=2, ss_no=5, tw_no=0)
    assert sample.video_id == '01_01'
    assert sample.score == pytest.approx(76.8)
    imgs = results['inputs'].numpy()
    assert imgs.shape == (4, 3, 32, 32)
    # Re-run up to decoding to see which frames were read.
    decoded = ds.pipeline.transforms[0](copy.deepcopy(raw))
    inds = decoded['frame_inds']
    assert inds.min() >= 2 and inds.max() <= 9
    levels = imgs.reshape(4, -1).mean(1)
    np.testing.assert_allclose(levels, 12 * inds, atol=6)


def test_decoded_frame_folders_use_ffmpeg_numbering(release, media):
    ds = _build(
        data_root=str(release),
        split_file='test_split_0.pkl',
        data_prefix=dict(img=str(media / 'whole_videos_frames')),
        pipeline=[
            dict(type='SampleFrames', clip_len=1, num_clips=4,
                 test_mode=True),
            dict(type='RawFrameDecode'),
        ])
    info = ds.get_data_info(0)
    assert info['frame_dir'] == str(media / 'whole_videos_frames' / '01')
    assert info['filename_tmpl'] == '{:06d}.jpg'
    # Frame 2 of the video is file 000003.jpg.
    assert (info['start_index'], info['total_frames']) == (3, 8)
    results = ds[0]
    frames = results['frame_inds'] - 1
    assert frames.min() >= 2 and frames.max() <= 9
    levels = np.stack(results['imgs']).reshape(4, -1).mean(1)
    np.testing.assert_allclose(levels, 12 * frames, atol=3)


def test_numpy_values_and_protocol_2_pickles(tmp_path):
    annos = {
        key: {
            k: (np.float64(v) if isinstance(v, float) else np.int64(v))
            for k, v in rec.items()
        }
        for key, rec in ANNOS.items()
    }
    annos[(1, 1)]['start_frame'] = 2.0  # spreadsheet-style whole float
    _dump(annos, tmp_path / 'final_annotations_dict.pkl', protocol=2)
    _dump(TEST, tmp_path / 'test_split_0.pkl', protocol=2)
    info = _build(data_root=str(tmp_path), split_file='test_split_0.pkl')[0]
    assert type(info['start_frame']) is int and info['start_frame'] == 2
    assert type(info['dive_labels']['ss_no']) is int
    assert type(info['score']) is float
    assert info['score'] == pytest.approx(76.8)


def test_code_in_a_pickle_is_refused(tmp_path):
    marker = tmp_path / 'ran'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    path = _dump({(1, 1): Payload()}, tmp_path / 'final_annotations_dict.pkl')
    with pytest.raises(ValueError, match=r'refusing to load .*open'):
        load_plain_pickle(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match='final_annotations_dict.pkl'):
        _build(data_root=str(tmp_path))


LOAD_ANNOTATIONS = r"""
import sys
from hallucinet_plugin.datasets.mtl_aqa_dataset import load_plain_pickle
try:
    load_plain_pickle(sys.argv[1])
except ValueError as err:
    sys.exit(str(err))
print('loaded')
"""


@pytest.mark.parametrize('case', ['object-field-scalar', 'forged-state'])
def test_forged_numpy_scalar_is_refused_without_a_signal(tmp_path, case):
    """A numpy scalar whose dtype state claims no objects over an object
    field: the reader this replaced checked ``dtype.hasobject``, which the
    flags made False, and the process died by SIGSEGV."""
    make = FORGED[case][0]
    value = make() if case != 'forged-state' else scalar_of(
        plain_name_forged_state())
    path = _dump({(1, 1): dict(final_score=value)},
                 tmp_path / 'final_annotations_dict.pkl', protocol=2)
    proc = subprocess.run([sys.executable, '-c', LOAD_ANNOTATIONS, path],
                          env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert path in proc.stderr and 'numpy dtype' in proc.stderr


def test_allocation_and_size_limits(tmp_path, monkeypatch):
    # 40-odd bytes that ask for 64 GiB.
    path = _dump({(1, 1): Reduce(bytearray, (1 << 36, ))},
                 tmp_path / 'final_annotations_dict.pkl')
    assert osp.getsize(path) < 100
    with pytest.raises(ValueError, match=r'annotations_dict.pkl.*'
                       r'refusing bytearray\(68719476736\)'):
        load_plain_pickle(path)
    monkeypatch.setattr(mtl_aqa_dataset, 'MAX_ANNOTATION_PICKLE_BYTES', 50)
    big = _dump(ANNOS, tmp_path / 'big.pkl')
    with pytest.raises(ValueError, match=r'big.pkl: \d+ bytes, more than'):
        load_plain_pickle(big)


def test_recognition_only_and_aqa_only(tmp_path):
    annos = {
        key: dict(start_frame=r['start_frame'], end_frame=r['end_frame'],
                  position=r['position'])
        for key, r in ANNOS.items()
    }
    _dump(annos, tmp_path / 'final_annotations_dict.pkl')
    info = _build(
        data_root=str(tmp_path), properties=dict(position=3),
        with_score=False)[0]
    assert info['dive_labels'] == dict(position=1)
    assert 'score' not in info
    with pytest.raises(ValueError, match="no field 'final_score'"):
        _build(data_root=str(tmp_path), properties=None)


def _write_json(path, records):
    with open(path, 'w') as f:
        json.dump(records, f)
    return str(path)


def _records():
    return [dict(event=k[0], clip=k[1], **{
        f: v
        for f, v in r.items() if f != 'primary_view'
    }) for k, r in ANNOS.items()]


def test_json_and_csv_give_the_same_samples_as_the_pickle(release, tmp_path):
    from_pkl = {d['video_id']: d for d in _build(data_root=str(release))}
    json_file = _write_json(tmp_path / 'train.json', _records())
    csv_file = str(tmp_path / 'train.csv')
    with open(csv_file, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(_records())
    for ann_file in (json_file, csv_file):
        ds = _build(
            ann_file=ann_file,
            data_prefix=dict(video=str(release / 'whole_videos')))
        assert len(ds) == 3
        for info in ds:
            ref = from_pkl[info['video_id']]
            for key in ('filename', 'start_index', 'total_frames',
                        'dive_labels', 'score', 'difficulty'):
                assert info[key] == ref[key], (ann_file, key)


def test_json_names_and_video_override(tmp_path):
    records = _records()
    records[0].update(position='Tuck', armstand=True, rotation_type='inward',
                      video='diver_a')
    ds = _build(
        ann_file=_write_json(tmp_path / 'a.json', records),
        data_prefix=dict(img='frames'),
        data_root=str(tmp_path))
    info = ds[0]
    assert info['dive_labels']['position'] == 1
    assert info['dive_labels']['armstand'] == 1
    assert info['dive_labels']['rotation_type'] == 3
    assert info['frame_dir'] == osp.join(str(tmp_path), 'frames', 'diver_a')
    mapped = _build(
        ann_file=_write_json(tmp_path / 'b.json', records),
        label_maps=dict(DIVE_LABEL_MAPS, position=dict(TUCK=0)))[0]
    assert mapped['dive_labels']['position'] == 0


def _broken(tmp_path, key, **fields):
    annos = copy.deepcopy(ANNOS)
    for name, value in fields.items():
        if value is None:
            del annos[key][name]
        else:
            annos[key][name] = value
    _dump(annos, tmp_path / 'final_annotations_dict.pkl')
    return dict(data_root=str(tmp_path))


@pytest.mark.parametrize('fields,message', [
    (dict(tw_no=None), r"annotation \(1, 2\) has no field 'tw_no'"),
    (dict(position=3), r'field position: class id 3 is outside \[0, 3\)'),
    (dict(ss_no=-1), r'field ss_no: class id -1'),
    (dict(end_frame=10), 'start_frame <= end_frame'),
    (dict(start_frame=2.5), r'field start_frame: expected an integer'),
    (dict(final_score='good'), 'field final_score: expected a number'),
    (dict(final_score=float('nan')), 'expected a finite number'),
    (dict(position='tuck'), None),  # names are fine, even in pickles
])
def test_bad_annotation_values(tmp_path, fields, message):
    kwargs = _broken(tmp_path, (1, 2), **fields)
    if message is None:
        assert _build(**kwargs)[1]['dive_labels']['position'] == 1
        return
    with pytest.raises(ValueError,
                       match=r'final_annotations_dict\.pkl: .*' + message):
        _build(**kwargs)


def test_bad_files_and_splits(release, tmp_path):
    root = str(release)
    _dump(TRAIN + [(9, 9)], release / 'bad_split.pkl')
    with pytest.raises(ValueError,
                       match=r'bad_split\.pkl: key \(9, 9\) has no annotation'
                       r' in .*final_annotations_dict\.pkl'):
        _build(data_root=root, split_file='bad_split.pkl')
    _dump(TRAIN + [(2, 1)], release / 'dup_split.pkl')
    with pytest.raises(ValueError, match=r'key \(2, 1\) is listed twice'):
        _build(data_root=root, split_file='dup_split.pkl')
    _dump(['01_01'], release / 'str_split.pkl')
    with pytest.raises(ValueError, match='not an \\(event, clip\\) tuple'):
        _build(data_root=root, split_file='str_split.pkl')
    with pytest.raises(FileNotFoundError, match='missing_split.pkl'):
        _build(data_root=root, split_file='missing_split.pkl')
    _dump([ANNOS[(1, 1)]], tmp_path / 'list.pkl')
    with pytest.raises(ValueError, match=r'list\.pkl: expected a dict'):
        _build(ann_file=str(tmp_path / 'list.pkl'))
    (tmp_path / 'a.txt').write_text('x')
    with pytest.raises(ValueError, match=r"a\.txt: .* not '\.txt'"):
        _build(ann_file=str(tmp_path / 'a.txt'))
    json_file = _write_json(tmp_path / 'a.json', _records())
    with pytest.raises(ValueError, match='split_file only selects'):
        _build(ann_file=json_file, split_file='train_split_0.pkl')
    for prefix in (dict(), dict(video='v', img='f')):
        with pytest.raises(ValueError, match='exactly one of the keys'):
            _build(data_root=root, data_prefix=prefix)


def test_bad_json_and_csv_records(tmp_path):
    records = _records()
    del records[1]['clip']
    with pytest.raises(ValueError, match=r"a\.json: record 1 has no field "
                       "'clip'"):
        _build(ann_file=_write_json(tmp_path / 'a.json', records))
    records = _records()
    records[2]['position'] = 'twisty'
    with pytest.raises(ValueError, match="unknown name 'twisty'"):
        _build(ann_file=_write_json(tmp_path / 'b.json', records))
    records = _records()
    records[2].update(event=1, clip=1)
    with pytest.raises(ValueError, match=r'key \(1, 1\) appears twice'):
        _build(ann_file=_write_json(tmp_path / 'c.json', records))
    csv_file = tmp_path / 'd.csv'
    rows = _records()
    rows[0]['final_score'] = ''
    with open(csv_file, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=r"d\.csv: annotation \(1, 1\) has "
                       "no field 'final_score'"):
        _build(ann_file=str(csv_file))


def test_default_properties_are_the_released_class_counts():
    assert MTL_AQA_PROPERTIES == dict(
        position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8)


def test_unlabelled_dives_read_only_their_window(release, tmp_path):
    """unlabelled=True reads the key and the window, never a property or
    the score: values that a labelled read refuses pass, and every sample
    says labelled=False."""
    annos = copy.deepcopy(ANNOS)
    annos[(2, 1)]['ss_no'] = 99  # outside the class count
    del annos[(1, 2)]['final_score']
    _dump(annos, release / 'final_annotations_dict.pkl')
    pack = [
        lambda results: dict(results, imgs=np.zeros((1, 4, 4, 3), np.uint8)),
        dict(type='PackActionInputs',
             meta_keys=('video_id', 'dive_labels', 'score'))
    ]
    with pytest.raises(ValueError, match='ss_no'):
        _build(data_root=str(release), split_file='train_split_0.pkl',
               pipeline=pack)
    ds = _build(data_root=str(release), split_file='train_split_0.pkl',
                pipeline=pack, unlabelled=True)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['video_id'] for d in infos] == ['02_01', '01_02']
    assert infos[0]['dive_labels'] == {}
    assert 'score' not in infos[1]
    sample = ds[0]['data_samples']
    assert sample.metainfo['labelled'] is False
    assert sample.metainfo['dive_labels'] == {}
    assert 'score' not in sample.metainfo
    # Records with nothing but the window (JSON).
    path = tmp_path / 'unlabelled.json'
    path.write_text(json.dumps([dict(event=1, clip=7, start_frame=0,
                                     end_frame=9)]))
    ds = _build(ann_file=str(path), unlabelled=True)
    assert ds.get_data_info(0)['total_frames'] == 10
    labelled = _build(data_root=str(release), split_file='test_split_0.pkl',
                      pipeline=pack)
    assert labelled[0]['data_samples'].metainfo.get('labelled', True)
    with pytest.raises(ValueError, match='needs labels'):
        _build(data_root=str(release), unlabelled=True, test_mode=True)
