"""``converters/flow.py``: TV-L1 flow of a video, its quantisation and
the layout of one video's flow folder."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from hallucinet_plugin.converters.flow import (
    BadVideoError,
    compute_tvl1_flow,
    dequantize_flow,
    extract_video_flow,
    quantize_flow,
)
from hallucinet_plugin.datasets.transforms.load_flow_clips import (
    DONE_MARKER,
    read_done_marker,
)
from tests.converters.flow_utils import (
    FLOW_TMPL,
    HEIGHT,
    MOTIONS,
    NUM_FRAMES,
    WIDTH,
    interior_mean,
    read_flow,
    translating_frames,
    write_flow_videos,
)


@pytest.fixture(scope='session')
def video_dir(tmp_path_factory) -> Path:
    return write_flow_videos(tmp_path_factory.mktemp('videos'))


def test_compute_tvl1_flow_recovers_translation():
    dx, dy = MOTIONS['right_up']
    frames = translating_frames(dx, dy)
    flows = compute_tvl1_flow(frames)
    assert flows.shape == (NUM_FRAMES - 1, HEIGHT, WIDTH, 2)
    assert flows.dtype == np.float32
    for flow in flows:
        np.testing.assert_allclose(interior_mean(flow), (dx, dy), atol=0.3)
    # Grayscale input gives the same result as RGB.
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    np.testing.assert_allclose(compute_tvl1_flow(gray), flows, atol=1e-4)
    with pytest.raises(ValueError, match='at least 2 frames'):
        compute_tvl1_flow(frames[:1])


def test_quantize_flow_maps_bound_linearly():
    bound = 20.
    flow = np.array([-30., -20., -10., 0., 10., 20., 30.])
    q = quantize_flow(flow, bound)
    assert q.dtype == np.uint8
    # Clipped ends, zero motion at 128, linear in between.
    assert q.tolist() == [0, 0, 64, 128, 191, 255, 255]
    step = 2 * bound / 255
    values = np.linspace(-bound, bound, 101)
    back = dequantize_flow(quantize_flow(values, bound), bound)
    assert np.abs(back - values).max() <= step / 2 + 1e-5
    with pytest.raises(ValueError, match='bound'):
        quantize_flow(flow, 0)


def test_extract_video_flow_layout_and_accuracy(video_dir, tmp_path):
    out_dir = tmp_path / 'right_up'
    result = extract_video_flow(video_dir / 'right_up.mp4', out_dir)
    assert (result.total_frames, result.num_frames) == (NUM_FRAMES - 1,
                                                        NUM_FRAMES)
    assert not result.skipped
    expected = {
        FLOW_TMPL.format(axis, i)
        for axis in 'xy' for i in range(1, NUM_FRAMES)
    } | {DONE_MARKER}
    assert set(os.listdir(out_dir)) == expected
    # No temporary folder is left next to the output.
    assert os.listdir(tmp_path) == ['right_up']
    marker = read_done_marker(out_dir)
    assert marker['total_frames'] == NUM_FRAMES - 1
    assert marker['method'] == 'tvl1'
    assert (marker['height'], marker['width']) == (HEIGHT, WIDTH)

    dx, dy = MOTIONS['right_up']
    for i in range(1, NUM_FRAMES):
        flow = read_flow(out_dir, i)
        assert flow.shape == (HEIGHT, WIDTH, 2)
        np.testing.assert_allclose(interior_mean(flow), (dx, dy), atol=0.5)


@pytest.mark.parametrize('content', [b'', b'not a video' * 50])
def test_corrupt_video_raises_naming_file(video_dir, tmp_path, content):
    bad = tmp_path / 'broken_clip.mp4'
    bad.write_bytes(content)
    with pytest.raises(BadVideoError, match='broken_clip.mp4'):
        extract_video_flow(bad, tmp_path / 'out' / 'broken_clip')
    # Nothing half-written is left behind.
    assert not (tmp_path / 'out' / 'broken_clip').exists()
    assert os.listdir(tmp_path / 'out') == []
