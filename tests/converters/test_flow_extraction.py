"""``converters/flow_extraction.py``: flow of a list or folder of videos,
resumed after a crash, bad videos named or skipped, read by mmaction2's
RawframeDataset, and through tools/extract_flow.py."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hallucinet_plugin.converters.flow import (
    BadVideoError,
    compute_tvl1_flow,
    dequantize_flow,
)
from hallucinet_plugin.converters.flow_extraction import extract_flow
from hallucinet_plugin.datasets.transforms.load_flow_clips import (
    DONE_MARKER,
    read_done_marker,
)
from tests.conftest import REPO
from tests.converters.flow_utils import (
    FLOW_TMPL,
    HEIGHT,
    MARGIN,
    MOTIONS,
    NUM_FRAMES,
    WIDTH,
    read_flow,
    translating_frames,
    write_flow_videos,
)


@pytest.fixture(scope='session')
def video_dir(tmp_path_factory) -> Path:
    return write_flow_videos(tmp_path_factory.mktemp('videos'))


@pytest.fixture(scope='session')
def video_list(video_dir) -> Path:
    ann = video_dir.parent / 'videos_list.txt'
    ann.write_text('right_up.mp4 3\nleft_down.mp4 5\n')
    return ann


def test_rawframe_dataset_reads_extracted_flow(video_dir, video_list,
                                               tmp_path):
    from mmaction.datasets import RawframeDataset
    from mmaction.datasets.transforms import (
        FormatShape,
        PackActionInputs,
        RawFrameDecode,
        SampleFrames,
    )

    out_root, ann = tmp_path / 'rawframes', tmp_path / 'flow_list.txt'
    summary = extract_flow(
        video_list,
        out_root,
        data_prefix=video_dir,
        also_rgb=True,
        out_list=ann,
        progress=False)
    assert summary['processed'] == 2 and summary['failed'] == []
    assert ann.read_text() == (f'right_up {NUM_FRAMES - 1} 3\n'
                               f'left_down {NUM_FRAMES - 1} 5\n')
    assert len(list((out_root / 'right_up').glob('img_*.jpg'))) == NUM_FRAMES

    clip_len = 4
    pipeline = [
        SampleFrames(clip_len=clip_len, num_clips=1, test_mode=True),
        RawFrameDecode(),
        FormatShape(input_format='NCHW_Flow'),
        PackActionInputs()
    ]
    dataset = RawframeDataset(
        str(ann),
        pipeline,
        data_prefix=dict(img=str(out_root)),
        filename_tmpl=FLOW_TMPL,
        modality='Flow',
        test_mode=True)
    assert len(dataset) == 2
    for idx, (dx, dy) in enumerate(MOTIONS.values()):
        sample = dataset[idx]
        inputs = sample['inputs'].numpy()
        # [num_clips, clip_len * 2 (x, y interleaved), H, W]
        assert inputs.shape == (1, 2 * clip_len, HEIGHT, WIDTH)
        flow = dequantize_flow(inputs[0], 20.)
        interior = flow[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
        np.testing.assert_allclose(interior[0::2].mean(), dx, atol=0.5)
        np.testing.assert_allclose(interior[1::2].mean(), dy, atol=0.5)
    assert dataset.get_data_info(1)['label'] == 5

    # The same list reads the RGB frames, flow i aligned with frame i.
    rgb = RawframeDataset(
        str(ann), [
            SampleFrames(clip_len=clip_len, num_clips=1, test_mode=True),
            RawFrameDecode(),
            FormatShape(input_format='NCHW'),
            PackActionInputs()
        ],
        data_prefix=dict(img=str(out_root)),
        test_mode=True)
    assert rgb[0]['inputs'].shape == (clip_len, 3, HEIGHT, WIDTH)


def test_resume_skips_finished_and_redoes_partial(video_dir, tmp_path):
    out_root = tmp_path / 'out'
    # Two workers forked after this process has run OpenCV's thread pool
    # (plain fork deadlocks then).
    compute_tvl1_flow(translating_frames(1, 0)[:3])
    first = extract_flow(video_dir, out_root, workers=2, progress=False)
    assert (first['processed'], first['skipped']) == (2, 0)
    done_dir, partial_dir = out_root / 'right_up', out_root / 'left_down'
    mtimes = {p.name: p.stat().st_mtime_ns for p in done_dir.iterdir()}

    # Simulate a crash: marker gone, a flow missing, stray file present,
    # and an orphaned temporary folder.
    (partial_dir / DONE_MARKER).unlink()
    (partial_dir / FLOW_TMPL.format('y', NUM_FRAMES - 1)).unlink()
    (partial_dir / 'stray.txt').write_text('junk')
    (out_root / '.left_down.tmp').mkdir()

    second = extract_flow(video_dir, out_root, progress=False)
    assert (second['processed'], second['skipped']) == (1, 1)
    assert {p.name: p.stat().st_mtime_ns
            for p in done_dir.iterdir()} == mtimes
    assert not (partial_dir / 'stray.txt').exists()
    assert (partial_dir / FLOW_TMPL.format('y', NUM_FRAMES - 1)).exists()
    assert read_done_marker(partial_dir)['total_frames'] == NUM_FRAMES - 1
    assert sorted(os.listdir(out_root)) == ['left_down', 'right_up']
    # Skipped videos still appear in the annotation entries.
    assert [e[:2] for e in second['entries']] == [('left_down', 7),
                                                   ('right_up', 7)]

    # Different settings do not reuse finished folders.
    third = extract_flow(
        video_dir, out_root, bound=10., workers=1, progress=False)
    assert (third['processed'], third['skipped']) == (2, 0)
    assert read_done_marker(done_dir)['bound'] == 10.


def test_bad_videos_in_list_raise_or_skip_with_warning(
        video_dir, tmp_path):
    bad = tmp_path / 'corrupt.mp4'
    bad.write_bytes(b'\x00' * 100)
    ann = tmp_path / 'list.txt'
    ann.write_text(f'{video_dir / "right_up.mp4"} 0\n{bad} 1\n'
                   f'{tmp_path / "missing.mp4"} 2\n')
    with pytest.raises(BadVideoError, match='corrupt.mp4'):
        extract_flow(ann, tmp_path / 'out', progress=False)

    out_list = tmp_path / 'flow.txt'
    with pytest.warns(UserWarning, match='Skipped 2 of 3 bad videos') as rec:
        summary = extract_flow(
            ann,
            tmp_path / 'out',
            skip_bad=True,
            out_list=out_list,
            progress=False)
    message = str(rec[0].message)
    assert 'corrupt.mp4' in message and 'missing.mp4' in message
    assert [Path(p).name for p, _ in summary['failed']] == [
        'corrupt.mp4', 'missing.mp4'
    ]
    assert len(out_list.read_text().splitlines()) == 1


def test_duplicate_output_folders_are_rejected(video_dir, tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_text('right_up.mp4 0\nright_up.avi 1\n')
    with pytest.raises(ValueError, match='right_up.avi'):
        extract_flow(ann, tmp_path / 'out', data_prefix=video_dir)


def test_cli_subprocess(video_dir, tmp_path):
    # Good videos plus a corrupt one, which --skip-bad reports by name.
    in_dir = tmp_path / 'videos'
    in_dir.mkdir()
    for name in MOTIONS:
        (in_dir / f'{name}.mp4').symlink_to(video_dir / f'{name}.mp4')
    (in_dir / 'garbled.avi').write_bytes(b'garbage' * 20)
    out_root, out_list = tmp_path / 'frames', tmp_path / 'list.txt'
    proc = subprocess.run([
        sys.executable,
        str(Path(REPO) / 'tools' / 'extract_flow.py'),
        str(in_dir), '--out',
        str(out_root), '--workers', '1', '--new-short', '24', '--also-rgb',
        '--skip-bad', '--out-list',
        str(out_list)
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert '3 videos: 2 extracted, 0 already done, 1 failed' in proc.stdout
    assert '3/3' in proc.stderr  # mmengine progress bar
    assert 'Skipped 1 of 3 bad videos' in proc.stderr
    assert 'garbled.avi' in proc.stderr
    assert sorted(out_list.read_text().splitlines()) == [
        f'left_down {NUM_FRAMES - 1}', f'right_up {NUM_FRAMES - 1}'
    ]
    assert sorted(os.listdir(out_root)) == ['left_down', 'right_up']
    # Short side 48 -> 24, so flow is in half-size pixels.
    frame_dir = out_root / 'right_up'
    flow = read_flow(frame_dir, 1)
    assert flow.shape == (HEIGHT // 2, WIDTH // 2, 2)
    assert cv2.imread(str(frame_dir / 'img_00001.jpg')).shape == (24, 32, 3)
    dx, dy = MOTIONS['right_up']
    np.testing.assert_allclose(
        flow[5:-5, 5:-5].reshape(-1, 2).mean(0), (dx / 2, dy / 2), atol=0.5)
