import json
import os
import os.path as osp
import subprocess
import sys

import decord
import numpy as np
import pytest

from demo.demo_data import (
    CLASSES,
    DIRECTIONS,
    SPLITS,
    generate_demo_dataset,
    render_video,
)
from demo.demo_data_cli import main as generate_main

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(
    num_teacher_videos=16,
    num_train_videos=16,
    num_val_videos=16,
    num_frames=18,
    size=32,
    progress=False)
# For the bookkeeping tests, which need files but not their content.
MINI = dict(
    num_teacher_videos=8,
    num_train_videos=8,
    num_val_videos=8,
    num_frames=4,
    size=16,
    workers=1,
    progress=False)


def _read_list(path):
    with open(path) as f:
        rows = [line.split() for line in f.read().splitlines()]
    return [(rel, int(label)) for rel, label in rows]


def _decode_all(root, split):
    frames = []
    for rel, _ in _read_list(osp.join(root, f'{split}_list.txt')):
        reader = decord.VideoReader(osp.join(root, 'videos', rel))
        frames.append(reader.get_batch(list(range(len(reader)))).asnumpy())
    return np.stack(frames)


def _owned_mtimes(root):
    return {
        osp.join(dirpath, name): os.stat(osp.join(dirpath, name)).st_mtime_ns
        for dirpath, _, names in os.walk(root) for name in names
    }


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo') / 'data')
    meta = generate_demo_dataset(root, seed=0, workers=2, **TINY)
    return root, meta


def test_layout_and_annotations(dataset):
    root, meta = dataset
    assert meta['generated'] is True
    with open(osp.join(root, 'label_map.txt')) as f:
        assert f.read().splitlines() == list(CLASSES)
    assert len(CLASSES) == 8
    for split in SPLITS:
        rows = _read_list(osp.join(root, f'{split}_list.txt'))
        assert len(rows) == 16
        for rel, label in rows:
            assert rel.startswith(f'{split}/') and rel.endswith('.mp4')
            assert osp.isfile(osp.join(root, 'videos', rel))
            assert 0 <= label < len(CLASSES)
        counts = np.bincount([label for _, label in rows], minlength=8)
        assert counts.tolist() == [2] * 8
        assert meta['splits'][split]['class_counts'] == dict(
            zip(CLASSES, [2] * 8))
        # Every video file on disk is listed, and no other.
        assert sorted(os.listdir(osp.join(root, 'videos', split))) == sorted(
            osp.basename(rel) for rel, _ in rows)


def test_meta_json_written(dataset):
    root, meta = dataset
    with open(osp.join(root, 'meta.json')) as f:
        on_disk = json.load(f)
    assert on_disk == {k: v for k, v in meta.items() if k != 'generated'}
    assert on_disk['params'] == dict(
        seed=0,
        num_teacher_videos=16,
        num_train_videos=16,
        num_val_videos=16,
        num_frames=18,
        size=32,
        fps=25,
        pose_agreement=0.9)
    assert on_disk['generator_version'] >= 1
    assert on_disk['single_frame_upper_bound'] == pytest.approx(0.45)
    assert not [n for n in os.listdir(root) if n.endswith('.tmp')]


def test_decord_decodes_every_video(dataset):
    root, _ = dataset
    for split in SPLITS:
        for rel, _ in _read_list(osp.join(root, f'{split}_list.txt')):
            reader = decord.VideoReader(osp.join(root, 'videos', rel))
            assert len(reader) == 18
            frames = reader.get_batch(list(range(18))).asnumpy()
            assert frames.shape == (18, 32, 32, 3)
            assert frames.dtype == np.uint8
            # Real content, not a blank or frozen video.
            assert frames.std() > 10
            assert np.abs(np.diff(frames.astype(int), axis=0)).mean() > 1


def test_deterministic_and_independent_of_workers(dataset, tmp_path):
    root, _ = dataset
    other = str(tmp_path / 'again')
    generate_demo_dataset(other, seed=0, workers=1, **TINY)
    for name in [f'{s}_list.txt' for s in SPLITS] + ['label_map.txt']:
        with open(osp.join(root, name)) as a, open(osp.join(other,
                                                            name)) as b:
            assert a.read() == b.read()
    for split in SPLITS:
        np.testing.assert_array_equal(
            _decode_all(root, split), _decode_all(other, split))


def test_different_seed_differs(dataset, tmp_path):
    root, _ = dataset
    other = str(tmp_path / 'seed1')
    generate_demo_dataset(other, seed=1, workers=1, **TINY)
    labels = [
        _read_list(osp.join(d, 'train_list.txt')) for d in (root, other)
    ]
    assert labels[0] != labels[1]
    frames = [_decode_all(d, 'val') for d in (root, other)]
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 10


def test_rerun_is_noop(dataset):
    root, _ = dataset
    before = _owned_mtimes(root)
    meta = generate_demo_dataset(root, seed=0, workers=2, **TINY)
    assert meta['generated'] is False
    assert meta['params']['seed'] == 0
    assert _owned_mtimes(root) == before


def test_mismatched_params_raise_then_overwrite(tmp_path):
    root = str(tmp_path / 'data')
    generate_demo_dataset(root, seed=0, **MINI)
    with pytest.raises(ValueError, match=r'meta\.json.*seed.*overwrite'):
        generate_demo_dataset(root, seed=3, **MINI)
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['params']['seed'] == 0
    meta = generate_demo_dataset(
        root, seed=3, overwrite=True, **dict(MINI, num_val_videos=12))
    assert meta['generated'] is True
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['params']['seed'] == 3
    rows = _read_list(osp.join(root, 'val_list.txt'))
    assert len(os.listdir(osp.join(root, 'videos', 'val'))) == 12
    # 12 videos over 8 classes: as balanced as it gets.
    counts = np.bincount([label for _, label in rows], minlength=8)
    assert sorted(counts.tolist()) == [1] * 4 + [2] * 4


def test_incomplete_run_is_regenerated(tmp_path):
    root = str(tmp_path / 'data')
    generate_demo_dataset(root, seed=0, **MINI)
    # What an interrupted run leaves: videos and lists, but no meta.json.
    os.remove(osp.join(root, 'meta.json'))
    stale = osp.join(root, 'videos', 'train', 'stale.mp4')
    open(stale, 'w').close()
    unrelated = osp.join(root, 'README.md')
    open(unrelated, 'w').close()
    meta = generate_demo_dataset(root, seed=0, **MINI)
    assert meta['generated'] is True
    assert osp.isfile(osp.join(root, 'meta.json'))
    assert not osp.exists(stale)
    # Files the generator does not own are left alone.
    assert osp.isfile(unrelated)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_frames=0), 'num_frames'),
    (dict(num_train_videos=-1), 'num_train_videos'),
    (dict(size=8), 'size'),
    (dict(pose_agreement=1.5), 'pose_agreement'),
    (dict(workers=0), 'workers'),
])
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_demo_dataset(str(tmp_path / 'data'), **dict(TINY, **kwargs))
    assert not osp.exists(tmp_path / 'data' / 'meta.json')


def _circular_centroid(mask):
    """Centre ``(x, y)`` of a mask on the torus, shape ``(H, W)``."""
    size = mask.shape[0]
    ys, xs = np.nonzero(mask)
    centre = []
    for coords in (xs, ys):
        theta = coords * 2 * np.pi / size
        mean = np.arctan2(np.sin(theta).mean(), np.cos(theta).mean())
        centre.append(mean % (2 * np.pi) * size / (2 * np.pi))
    return np.array(centre)


@pytest.mark.parametrize('label', range(8))
def test_sprite_moves_as_its_class_says(label):
    size, num_frames = 64, 24
    frames, latents = render_video(
        np.random.default_rng([7, label]),
        label,
        num_frames,
        size,
        pose_agreement=0.9,
        distractors=False)
    direction, speed = CLASSES[label].split('_')[1:]
    assert latents['direction'] == direction
    # Flat background: its colour is the median pixel, the sprite is every
    # pixel far from it.
    background = np.median(frames[0].reshape(-1, 3), axis=0)
    centres = np.stack([
        _circular_centroid(np.abs(f.astype(int) - background).max(-1) > 40)
        for f in frames
    ])
    steps = np.diff(centres, axis=0)
    # Wrapping across a border shows up as a jump of about one frame size.
    steps = (steps + size / 2) % size - size / 2
    velocity = steps.mean(0)
    np.testing.assert_allclose(velocity, latents['velocity'], atol=0.15)
    expected = {
        'right': (1, 0),
        'up': (0, -1),
        'left': (-1, 0),
        'down': (0, 1)
    }[direction]
    # Mostly along the named direction (screen y points down).
    assert np.dot(velocity, expected) > 0.9 * np.linalg.norm(velocity)
    moved = np.linalg.norm(velocity)
    assert (moved < 2.0) if speed == 'slow' else (moved > 2.4)
    # The whole video is in motion: a 16-frame clip from any start shows
    # the sprite travel (at least 15 frames x 1 pixel).
    for start in range(num_frames - 15):
        assert np.linalg.norm(steps[start:start + 15].sum(0)) > 12


def test_pose_agrees_with_direction_as_configured():
    def agreement(prob, num):
        agree = []
        for i in range(num):
            _, latents = render_video(
                np.random.default_rng([1, i]), i % 8, 1, 16, prob)
            assert latents['pose'] in DIRECTIONS
            agree.append(latents['pose'] == latents['direction'])
        return np.mean(agree)

    assert agreement(1.0, 40) == 1.0
    assert agreement(0.0, 40) == 0.0
    # 300 draws: +-3.5 standard deviations around 0.9.
    assert 0.84 <= agreement(0.9, 300) <= 0.96


def test_cli_subprocess(tmp_path, capsys):
    root = str(tmp_path / 'cli')
    args = [
        root, '--num-teacher-videos', '8', '--num-train-videos', '8',
        '--num-val-videos', '8', '--num-frames', '17', '--size', '32',
        '--workers', '2', '--seed', '5'
    ]
    # From the repository root, as the docs write it.
    out = subprocess.run([sys.executable, '-m', 'demo', 'data'] + args,
                         cwd=REPO_ROOT,
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert 'Generated' in out
    for split in SPLITS:
        assert osp.join(root, 'videos', split) in out
        assert osp.join(root, f'{split}_list.txt') in out
        assert len(_read_list(osp.join(root, f'{split}_list.txt'))) == 8
    with open(osp.join(root, 'meta.json')) as f:
        params = json.load(f)['params']
    assert params['seed'] == 5 and params['num_frames'] == 17
    reader = decord.VideoReader(
        osp.join(root, 'videos',
                 _read_list(osp.join(root, 'val_list.txt'))[0][0]))
    assert len(reader) == 17

    # Re-runs in this process: a second interpreter start (importing torch
    # and mmaction2) would cost more than the rest of this file.
    before = _owned_mtimes(root)
    generate_main(args)
    assert 'nothing written' in capsys.readouterr().out
    assert _owned_mtimes(root) == before
    with pytest.raises(ValueError, match='seed.*overwrite'):
        generate_main(args[:-1] + ['6'])
    generate_main(args[:-1] + ['6', '--overwrite'])
    assert 'Generated' in capsys.readouterr().out
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['params']['seed'] == 6
