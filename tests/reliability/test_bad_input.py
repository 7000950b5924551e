"""Bad input is refused, naming the file, the line or the field: broken
videos (real damaged mp4 files decoded by decord), bad annotation lines,
missing frames of frame folders, short videos, and student and teacher
inputs that disagree."""
import logging
import os
import os.path as osp
import shutil
import struct

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmaction.structures import ActionDataSample
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.hallu_video_dataset  # noqa: F401
from hallucinet_plugin.datasets.transforms.hallu_decord_init import (
    DECODER_ERRORS,
    VideoReadError,
)
from hallucinet_plugin.utils import set_gt_label
from tests.conftest import (
    frozen_tiny_teacher,
    make_video_dataset,
    moving_square_video,
    write_video,
)

init_default_scope('mmaction')

CLIP_LEN = 8


def pipeline(out_of_bound_opt='loop', test_mode=True):
    # Clips placed as at test time: which frames are decoded (and so
    # whether a damaged one is hit) must not depend on chance.
    return [
        dict(type='HalluDecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=CLIP_LEN,
            test_mode=test_mode,
            out_of_bound_opt=out_of_bound_opt),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews', teacher_scale=(16, 16)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
    ]


def dataset(ann_file, video_dir, **kwargs):
    cfg = dict(
        type='HalluVideoDataset',
        ann_file=str(ann_file),
        data_prefix=dict(video=str(video_dir)),
        pipeline=kwargs.pop('pipeline', pipeline()))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


# ------------------------------------------------------------ bad videos
def atoms(data: bytes) -> dict:
    """Top-level mp4 boxes: name -> (offset, size)."""
    boxes, i = {}, 0
    while i < len(data):
        size, name = struct.unpack('>I4s', data[i:i + 8])
        boxes[name] = (i, size)
        i += size
    return boxes


def faststart(data: bytes) -> bytes:
    """Move the index (``moov``) before the frames (``mdat``), as
    streaming-friendly encoders write mp4s: a truncated download of such a
    file still opens with all frames announced."""
    boxes = atoms(data)
    box = lambda name: data[boxes[name][0]:sum(boxes[name])]  # noqa: E731
    moov = bytearray(box(b'moov'))
    # Chunk offsets (stco) point into mdat, which moves by len(moov).
    k = moov.find(b'stco')
    count = struct.unpack('>I', moov[k + 8:k + 12])[0]
    for j in range(count):
        at = k + 12 + 4 * j
        offset = struct.unpack('>I', moov[at:at + 4])[0]
        struct.pack_into('>I', moov, at, offset + len(moov))
    return box(b'ftyp') + box(b'free') + bytes(moov) + box(b'mdat')


def damage(good: bytes, kind: str) -> bytes:
    rng = np.random.default_rng(0)
    mdat_at, mdat_size = atoms(good)[b'mdat']
    if kind == 'empty':
        return b''
    if kind == 'truncated':
        # The index is at the end: gone with the second half.
        return good[:len(good) // 2]
    if kind == 'not_a_video':
        return b'<html>404 Not Found</html>\n'
    if kind == 'corrupt_frames':
        # Index intact, the second half of the coded frames scrambled.
        data = bytearray(good)
        start = mdat_at + mdat_size // 2
        data[start:mdat_at + mdat_size] = rng.integers(
            0, 256, mdat_at + mdat_size - start, np.uint8).tobytes()
        return bytes(data)
    if kind == 'flipped_bytes':
        # Five bytes inverted inside the coded frames: still decodable.
        data = bytearray(good)
        for at in rng.integers(mdat_at + 8, mdat_at + mdat_size, 5):
            data[at] ^= 0xFF
        return bytes(data)
    if kind == 'truncated_faststart':
        fast = faststart(good)
        return fast[:len(fast) - mdat_size // 2]
    raise ValueError(kind)


BAD = {
    'missing': 'video not found',
    'empty': r'empty file \(0 bytes\)',
    'truncated': 'not a readable video',
    'not_a_video': 'not a readable video',
    'corrupt_frames': 'cannot decode frames',
    'truncated_faststart': 'not a readable video',
}


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad_videos')
    data = make_video_dataset(str(root), num_videos=4, num_frames=24)
    with open(osp.join(data['video_dir'], 'video_000.mp4'), 'rb') as f:
        good = f.read()
    for kind in BAD:
        if kind != 'missing':
            with open(osp.join(data['video_dir'], f'{kind}.mp4'), 'wb') as f:
                f.write(damage(good, kind))
    with open(osp.join(data['video_dir'], 'flipped_bytes.mp4'), 'wb') as f:
        f.write(damage(good, 'flipped_bytes'))
    # A sanity check of the damage: the faststart copy itself is fine.
    with open(osp.join(data['video_dir'], 'faststart.mp4'), 'wb') as f:
        f.write(faststart(good))
    return data


def one_line(tmp_path, line):
    ann = tmp_path / 'list.txt'
    ann.write_text(line + '\n')
    return ann


def test_faststart_copy_decodes(videos, tmp_path):
    """The damage below is in the data: the rewritten file is fine."""
    ann = tmp_path / 'list.txt'
    ann.write_text('faststart.mp4 0\nvideo_000.mp4 0\n')
    ds = dataset(ann, videos['video_dir'])
    assert torch.equal(ds[0]['inputs']['imgs'], ds[1]['inputs']['imgs'])


@pytest.mark.parametrize('kind', list(BAD))
def test_unreadable_video_names_the_file(videos, tmp_path, kind):
    ds = dataset(
        one_line(tmp_path, f'{kind}.mp4 1'),
        videos['video_dir'],
        check_files=False)
    path = osp.join(videos['video_dir'], f'{kind}.mp4')
    with pytest.raises(VideoReadError, match=BAD[kind]) as info:
        ds[0]
    assert str(info.value).startswith(path)
    assert any('line 1 of' in note for note in info.value.__notes__)


def test_damaged_but_decodable_video_is_counted_and_named(videos, tmp_path):
    """Flipped bytes decode to damaged frames with no error from decord:
    FFmpeg's complaints are counted and a warning names the file."""
    bad = osp.join(videos['video_dir'], 'flipped_bytes.mp4')
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\nflipped_bytes.mp4 1\n')
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    DECODER_ERRORS.clear()
    try:
        ds = dataset(ann, videos['video_dir'])
        good_imgs = ds[0]['inputs']['imgs']
        assert not DECODER_ERRORS
        damaged = ds[1]['inputs']['imgs']
        first = DECODER_ERRORS[bad]
        ds[1]
    finally:
        logger.removeHandler(records)
    assert not torch.equal(good_imgs, damaged)  # the damage is real
    # Each read counts (decord's decoding thread may write a line between
    # two watched calls: a lower bound, not an exact count).
    assert first > 0 and DECODER_ERRORS[bad] > first
    warned = [m for m in records.messages if 'decoder' in m]
    assert len(warned) == 2 and all(m.startswith(bad) for m in warned)
    assert f'the decoder reported {first} errors' in warned[0]
    assert f'({DECODER_ERRORS[bad]} so far for this video)' in warned[1]
    # 'raise' makes it unreadable (skip_unreadable can skip it); 'ignore'.
    strict = pipeline()
    strict[0] = dict(type='HalluDecordInit', decoder_errors='raise')
    with pytest.raises(VideoReadError, match='flipped_bytes.mp4: the decoder'):
        dataset(ann, videos['video_dir'], pipeline=strict)[1]
    strict[0]['decoder_errors'] = 'ignore'
    DECODER_ERRORS.clear()
    dataset(ann, videos['video_dir'], pipeline=strict)[1]
    assert not DECODER_ERRORS
    with pytest.raises(ValueError, match="decoder_errors must be"):
        strict[0]['decoder_errors'] = 'skip'
        dataset(ann, videos['video_dir'], pipeline=strict)


def test_unreadable_video_named_from_a_loader_worker(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\ncorrupt_frames.mp4 1\n')
    ds = dataset(ann, videos['video_dir'])
    loader = DataLoader(
        ds, batch_size=2, num_workers=1, collate_fn=pseudo_collate)
    with pytest.raises(VideoReadError) as info:
        next(iter(loader))
    message = str(info.value)
    assert osp.join(videos['video_dir'], 'corrupt_frames.mp4') in message
    assert f'line 2 of {ann}' in message


def test_missing_videos_fail_at_start_up(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\ngone.mp4 1\nvideo_001.mp4 1\n'
                   'also_gone.mp4 2\n')
    with pytest.raises(ValueError) as info:
        dataset(ann, videos['video_dir'])
    message = str(info.value)
    assert f'{ann}: 2 of 4 videos not found' in message
    assert f'line 2: {osp.join(videos["video_dir"], "gone.mp4")}' in message
    assert 'line 4: ' in message and 'also_gone.mp4' in message


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_skip_unreadable_counts_and_replaces(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\nvideo_001.mp4 1\ncorrupt_frames.mp4 1\n'
                   'video_002.mp4 2\ngone.mp4 3\nvideo_003.mp4 3\n')
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        ds = dataset(ann, videos['video_dir'], skip_unreadable=True)
        # The missing video is dropped at start-up, counted.
        assert len(ds) == 5
        assert any('skipping 1 of 6 videos that do not exist' in m
                   for m in records.messages)
        np.random.seed(0)
        files = [ds[i]['data_samples'].metainfo['filename'] for i in range(5)]
    finally:
        logger.removeHandler(records)
    bad = osp.join(videos['video_dir'], 'corrupt_frames.mp4')
    # The corrupt video's place went to another video; nothing was None.
    assert bad not in files and len(files) == 5
    assert ds.unreadable == {bad}
    assert any(
        m.startswith('skipping an unreadable video (1 so far') and bad in m
        for m in records.messages)
    # Never in test mode: a skipped test video would change the metric.
    with pytest.raises(ValueError, match='1 of 6 videos not found'):
        dataset(ann, videos['video_dir'], skip_unreadable=True,
                test_mode=True)
    ann.write_text('video_000.mp4 0\ncorrupt_frames.mp4 1\n')
    test_ds = dataset(
        ann, videos['video_dir'], skip_unreadable=True, test_mode=True)
    with pytest.raises(VideoReadError, match='corrupt_frames.mp4'):
        test_ds[1]


def test_skip_unreadable_gives_up_on_a_broken_dataset(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('corrupt_frames.mp4 0\nempty.mp4 1\nvideo_000.mp4 0\n')
    ds = dataset(
        ann,
        videos['video_dir'],
        skip_unreadable=True,
        max_unreadable_ratio=0.5)
    with pytest.raises(RuntimeError, match='2 of 3 videos are unreadable'):
        ds.prepare_data(0)
        ds.prepare_data(1)


def test_samples_name_their_video(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('\nvideo_001.mp4 1\n')
    sample = dataset(ann, videos['video_dir'])[0]['data_samples']
    assert sample.metainfo['filename'] == osp.join(videos['video_dir'],
                                                   'video_001.mp4')
    assert sample.metainfo['ann_line'] == 2


# ------------------------------------------------------------ short videos
@pytest.mark.parametrize('opt', ['loop', 'repeat_last', 'error'])
def test_video_shorter_than_the_teacher_clip(tmp_path, opt):
    """Policy: HalluSampleFrames' out_of_bound_opt, on a real 5-frame
    video and an 8-frame teacher clip."""
    video_dir = tmp_path / 'videos'
    video_dir.mkdir()
    rng = np.random.default_rng(0)
    write_video(
        str(video_dir / 'short.mp4'), moving_square_video(0, 5, 32, rng))
    ds = dataset(
        one_line(tmp_path, 'short.mp4 0'),
        video_dir,
        pipeline=pipeline(out_of_bound_opt=opt))
    if opt == 'error':
        with pytest.raises(ValueError, match=r'short\.mp4: 5 frames, '
                           'shorter than the teacher clip of 8 frames'):
            ds[0]
        return
    out = ds[0]
    assert out['inputs']['teacher_imgs'].shape[:3] == (1, 3, CLIP_LEN)
    expected = [0, 1, 2, 3, 4, 0, 1, 2] if opt == 'loop' else \
        [0, 1, 2, 3, 4, 4, 4, 4]
    info = ds.get_data_info(0)
    for transform in ds.pipeline.transforms[:2]:
        info = transform(info)
    assert info['total_frames'] == 5
    assert info['teacher_inds'].tolist() == [expected]


# -------------------------------------------------------- annotation lines
BAD_LINES = {
    'non-integer label': ('video_000.mp4 walking', "label 'walking' is not "
                          'an integer'),
    'float label': ('video_000.mp4 1.0', "label '1.0' is not an integer"),
    'three columns': ('video_000.mp4 1 2', 'expected "<path> <label>", got 3'),
    'label >= num_classes': ('video_000.mp4 4', 'label 4 >= num_classes=4'),
    'negative label': ('video_000.mp4 -2', 'negative label -2'),
}


@pytest.mark.parametrize('case', list(BAD_LINES))
def test_bad_annotation_line_names_file_and_line(videos, tmp_path, case):
    line, reason = BAD_LINES[case]
    ann = tmp_path / 'list.txt'
    ann.write_text(f'video_001.mp4 1\n\nvideo_002.mp4 2\n{line}\n')
    with pytest.raises(ValueError) as info:
        dataset(ann, videos['video_dir'], num_classes=4)
    message = str(info.value)
    assert message.startswith(f'annotation file {ann}: 1 bad line(s)')
    assert f'line 4: {reason}' in message
    assert repr(line) in message


def test_every_bad_line_is_reported(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 x\nvideo_001.mp4 1\nvideo_002.mp4 9\n'
                   'a b c\n')
    with pytest.raises(ValueError) as info:
        dataset(ann, videos['video_dir'], num_classes=4)
    message = str(info.value)
    assert '3 bad line(s)' in message
    assert all(f'line {n}:' in message for n in (1, 3, 4))
    assert 'line 2:' not in message


def test_unlabelled_lines(videos, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4\nvideo_001.mp4\n')
    with pytest.raises(ValueError, match='only a test dataset may be'):
        dataset(ann, videos['video_dir'])
    # An unlabelled test list, as mmaction2's: label -1.
    test_ds = dataset(ann, videos['video_dir'], test_mode=True)
    assert [test_ds.get_data_info(i)['label'] for i in range(2)] == [-1, -1]
    ann.write_text('video_000.mp4 0\nvideo_001.mp4\n')
    with pytest.raises(ValueError, match=r'1 lines without a label among 1 '
                       r'with one \(first: line 2\)'):
        dataset(ann, videos['video_dir'], test_mode=True)


def test_valid_list_reads_as_video_dataset(videos):
    """Same samples as mmaction2's VideoDataset for a valid list."""
    ours = dataset(videos['ann_file'], videos['video_dir'], num_classes=4)
    theirs = DATASETS.build(
        dict(
            type='VideoDataset',
            ann_file=videos['ann_file'],
            data_prefix=dict(video=videos['video_dir']),
            pipeline=[]))
    assert len(ours) == len(theirs) == 4
    for i in range(4):
        a, b = ours.get_data_info(i), theirs.get_data_info(i)
        assert (a['filename'], a['label']) == (b['filename'], b['label'])


# ------------------------------------------------------------ frame folders
@pytest.fixture
def frame_folders(tmp_path):
    import cv2
    for name in ('a', 'b'):
        os.makedirs(tmp_path / name)
        for i in range(1, 21):
            cv2.imwrite(
                str(tmp_path / name / f'img_{i:05d}.jpg'),
                np.full((32, 32, 3), 10 * i, np.uint8))
    (tmp_path / 'list.txt').write_text('a 20 0\nb 20 1\n')
    return tmp_path


def rawframe_dataset(root):
    return DATASETS.build(
        dict(
            type='RawframeDataset',
            ann_file=str(root / 'list.txt'),
            data_prefix=dict(img=str(root)),
            start_index=1,
            pipeline=[
                dict(type='HalluSampleFrames', clip_len=CLIP_LEN,
                     test_mode=True),
                dict(type='RawFrameDecode'),
                dict(type='HalluSplitViews', teacher_scale=(16, 16)),
                dict(type='FormatShape', input_format='NCHW'),
                dict(
                    type='PackActionInputs',
                    collect_keys=('imgs', 'teacher_imgs'))
            ]))


def test_frame_folder_with_a_missing_frame(frame_folders):
    # The test-time clip of a 20-frame folder covers frames 7..14.
    os.remove(frame_folders / 'b' / 'img_00009.jpg')
    ds = rawframe_dataset(frame_folders)
    assert ds[0]['inputs']['teacher_imgs'].shape[:3] == (1, 3, CLIP_LEN)
    with pytest.raises(FileNotFoundError, match=r'b/img_00009\.jpg'):
        ds[1]


def test_frame_folder_shorter_than_its_annotation(frame_folders):
    (frame_folders / 'list.txt').write_text('a 20 0\nb 30 1\n')
    shutil.rmtree(frame_folders / 'b')
    os.makedirs(frame_folders / 'b')
    with pytest.raises(FileNotFoundError, match=r'b/img_\d{5}\.jpg'):
        rawframe_dataset(frame_folders)[1]


# --------------------------------------- student and teacher inputs disagree
def tiny_hallucinet():
    teacher = frozen_tiny_teacher(num_classes=4)
    model = MODELS.build(
        dict(
            type='HalluciNet',
            backbone=dict(type='timm.resnet10t', pretrained=False),
            teacher=teacher,
            hallu_head=dict(
                type='HallucinationHead', in_channels=512, out_channels=64),
            cls_head=dict(
                type='TSNHead', num_classes=4, in_channels=512 + 64),
            data_preprocessor=dict(
                type='HalluciNetDataPreprocessor',
                mean=[127.5] * 3,
                std=[64.] * 3,
                teacher=dict(mean=[127.5] * 3, std=[64.] * 3))))
    model.init_weights()
    return model


def test_teacher_clips_and_student_segments_must_agree():
    """Teacher clips for 3 segments, student frames for 2."""
    model = tiny_hallucinet()
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (2, 3, 32, 32), generator=g).byte()
            for _ in range(2)]
    clips = [torch.randint(0, 256, (3, 3, CLIP_LEN, 16, 16),
                           generator=g).byte() for _ in range(2)]
    samples = [set_gt_label(ActionDataSample(), 0) for _ in range(2)]
    data = model.data_preprocessor(
        dict(inputs=dict(imgs=imgs, teacher_imgs=clips),
             data_samples=samples), True)
    with pytest.raises(ValueError,
                       match='6 teacher clips for 4 student segments'):
        model(**data, mode='loss')


def test_duplicate_and_outside_entries_are_named(videos, tmp_path):
    """A video listed twice is sampled twice as often; one outside the
    data prefix comes from another folder: both are named in a warning."""
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    os.symlink(osp.join(videos['video_dir'], 'video_001.mp4'),
               outside / 'video_001.mp4')
    ann = tmp_path / 'list.txt'
    ann.write_text('video_000.mp4 0\nvideo_002.mp4 1\nvideo_000.mp4 0\n'
                   f'../{outside.name}/video_001.mp4 1\n')
    video_dir = tmp_path / 'videos'
    video_dir.mkdir()
    for name in ('video_000.mp4', 'video_002.mp4'):
        os.symlink(osp.join(videos['video_dir'], name), video_dir / name)
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        ds = dataset(ann, video_dir)
    finally:
        logger.removeHandler(records)
    assert len(ds) == 4  # a warning, not a refusal
    text = '\n'.join(records.messages)
    assert f'{ann}: 1 videos listed more than once' in text
    assert 'line 3: ' in text and '(also line 1)' in text
    assert '1 videos outside the data prefix' in text
    assert f'line 4: {video_dir}/../elsewhere/video_001.mp4' in text
