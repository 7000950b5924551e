"""The generated diving demo: MTL-AQA's released layout, reproducible, and
dives that move as their labels say."""
import json
import os.path as osp

import decord
import numpy as np
import pytest

from demo.dive_demo_data import (
    ANNOTATION_FILE,
    DIVE_FRAMES,
    DIVE_PROPERTIES,
    SPLIT_FILES,
    TEACHER_CLASSES,
    TEACHER_LISTS,
    VIDEO_DIR,
    _Dive,
    difficulty,
    execution,
    generate_dive_demo_dataset,
    render_event,
)
from hallucinet_plugin.datasets.mtl_aqa_dataset import (
    MTLAQADataset,
    load_plain_pickle,
)

SMALL = dict(
    num_train_events=2,
    num_test_events=1,
    num_unlabelled_events=1,
    dives_per_event=2,
    num_teacher_clips=12,
    workers=1)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('dive_demo'))
    meta = generate_dive_demo_dataset(root, **SMALL)
    return root, meta


def test_released_layout_read_by_mtl_aqa_dataset(dataset):
    root, meta = dataset
    assert meta['generated'] and meta['properties'] == DIVE_PROPERTIES
    annos = load_plain_pickle(osp.join(root, ANNOTATION_FILE))
    assert set(annos) == {(e, c) for e in (1, 2, 3, 4) for c in (1, 2)}
    train = load_plain_pickle(osp.join(root, SPLIT_FILES['train']))
    test = load_plain_pickle(osp.join(root, SPLIT_FILES['test']))
    unlabelled = load_plain_pickle(osp.join(root, SPLIT_FILES['unlabelled']))
    # Test and unlabelled events apart from training events.
    assert {k[0] for k in train} == {1, 2} and {k[0] for k in test} == {3}
    assert unlabelled == [(4, 1), (4, 2)]
    for split, keys in (('train', train), ('test', test),
                        ('unlabelled', unlabelled)):
        ds = MTLAQADataset(
            osp.join(root, ANNOTATION_FILE),
            pipeline=[],
            split_file=osp.join(root, SPLIT_FILES[split]),
            data_prefix=dict(video=osp.join(root, VIDEO_DIR)),
            properties=DIVE_PROPERTIES)
        assert len(ds) == len(keys) == meta['splits'][split]['num_dives']
    for (event, clip), rec in annos.items():
        assert rec['end_frame'] - rec['start_frame'] + 1 == DIVE_FRAMES
        assert rec['final_score'] == pytest.approx(
            rec['difficulty'] *
            execution(**meta['latents'][f'{event:02d}_{clip:02d}']),
            abs=0.01)
        assert rec['difficulty'] == difficulty(rec)
    # Dives of one event do not overlap and lie inside its video.
    for event in (1, 2, 3, 4):
        dives = sorted(
            (r['start_frame'], r['end_frame'])
            for (e, _), r in annos.items() if e == event)
        assert dives[0][1] < dives[1][0]
        frames = len(
            decord.VideoReader(
                osp.join(root, VIDEO_DIR, f'{event:02d}.mp4')))
        assert dives[-1][1] < frames
    with open(osp.join(root, TEACHER_LISTS['train'])) as f:
        train_clips = f.read().split('\n')[:-1]
    with open(osp.join(root, TEACHER_LISTS['val'])) as f:
        val_clips = f.read().split('\n')[:-1]
    assert (len(train_clips), len(val_clips)) == (10, 2)
    assert all(0 <= int(line.split()[1]) < len(TEACHER_CLASSES)
               for line in train_clips + val_clips)


def test_motion_only_during_the_annotated_flights(dataset):
    """The annotations match the video: the sprite moves between take-off
    and entry of each dive, the scene is still elsewhere (up to noise)."""
    root, _ = dataset
    annos = load_plain_pickle(osp.join(root, ANNOTATION_FILE))
    video = decord.VideoReader(osp.join(root, VIDEO_DIR, '01.mp4'))
    frames = video.get_batch(list(range(len(video)))).asnumpy().astype(
        np.float32)
    # Pixels that change by more than sensor noise from frame to frame.
    moved = (np.abs(np.diff(frames, axis=0)).max(-1) > 40).sum(axis=(1, 2))
    flying = np.zeros(len(moved), bool)
    idle = np.ones(len(moved), bool)
    for (event, _), rec in annos.items():
        if event == 1:
            # Flight: from take-off (frame 6 of the dive) to the entry.
            flying[rec['start_frame'] + 8:rec['start_frame'] + 86] = True
            idle[rec['start_frame'] - 1:rec['end_frame'] + 1] = False
    assert idle.sum() >= 10
    assert np.mean(moved[flying] >= 5) > 0.9
    assert np.mean(moved[idle]) < 1


def test_dives_move_as_labelled():
    rng = np.random.default_rng(0)
    for rotation_type, sense in ((0, 1), (1, 1), (2, -1), (3, -1)):
        for ss_no in range(4):
            for armstand in (0, 1):
                labels = dict(
                    position=0,
                    armstand=armstand,
                    rotation_type=rotation_type,
                    ss_no=ss_no,
                    tw_no=0)
                dive = _Dive(rng, labels, 64)
                dive.wobble = 0.0
                dive.entry_tilt = 0.0
                start = dive.pose(0)[0]
                end = dive.pose(6 + 82)[0]
                turns = (end - start) / (2 * np.pi)
                half = 0.0 if armstand else 0.5
                assert turns == pytest.approx(sense * (ss_no + 1 + half))
                # Head first into the water: head down at the entry.
                assert np.cos(end) == pytest.approx(-1)
                assert dive.pose(6 + 83) is None  # under water
    # Twists: the body narrows each time it turns edge-on.
    dive = _Dive(rng, dict(DIVE_PROPERTIES, position=0, armstand=0,
                           rotation_type=0, ss_no=0, tw_no=2), 64)
    narrow = [dive.pose(6 + 82 * u)[1] < 0.5 for u in np.linspace(0, 1, 81)]
    # Two twists: the body is seen edge-on four times.
    assert sum(np.diff(np.array(narrow, int)) == 1) == 4


def test_reproducible_and_reused(dataset, tmp_path):
    root, meta = dataset
    again = generate_dive_demo_dataset(root, **SMALL)
    assert again['generated'] is False
    other = str(tmp_path / 'other')
    generate_dive_demo_dataset(other, **dict(SMALL, workers=2))
    for name in (ANNOTATION_FILE, *SPLIT_FILES.values()):
        assert load_plain_pickle(osp.join(root, name)) == \
            load_plain_pickle(osp.join(other, name))
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['latents'] == meta['latents']
    with pytest.raises(ValueError, match='other parameters'):
        generate_dive_demo_dataset(root, **dict(SMALL, seed=1))
    with pytest.raises(ValueError, match='multiple of 32'):
        generate_dive_demo_dataset(str(tmp_path / 'x'), size=48)


def test_render_event_gaps_and_scores():
    frames, dives = render_event(np.random.default_rng(3), 3, 64)
    assert frames.shape[1:] == (64, 64, 3) and frames.dtype == np.uint8
    starts = [d['record']['start_frame'] for d in dives]
    assert starts[0] >= 6 and all(
        b - a >= DIVE_FRAMES + 6 for a, b in zip(starts, starts[1:]))
    assert len(frames) > dives[-1]['record']['end_frame']
    # Worse execution, lower score at the same difficulty.
    assert execution(0.0, 0.0) > execution(0.5, 0.0) > execution(1.0, 1.0)
