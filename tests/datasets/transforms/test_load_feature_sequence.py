"""LoadFeatureSequence: the streams of a video read from their stores,
banks of different clips aligned by the first frames of their windows."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.feature_bank import window_starts
from tests.datasets.feature_sequences import build_dataset, sequence_pipeline
from tests.feature_bank.bank_utils import write_bank

init_default_scope('mmaction')

DIMS = dict(appearance=12, motion=6)


def test_banks_of_different_clips_are_aligned_by_window_start(tmp_path):
    # Motion: 8-frame clips every 4 frames; appearance: 1-frame clips
    # every frame, row i holding the number i.
    total = 30
    motion_starts = window_starts(total, 8, 1, 4)
    motion = write_bank(
        tmp_path / 'motion.lmdb', {
            'a.mp4': (total,
                      np.repeat(motion_starts[:, None], 6,
                                axis=1).astype(np.float32))
        },
        stride=4,
        clip_len=8)
    appearance = write_bank(
        tmp_path / 'appearance.lmdb', {
            'a.mp4': (total,
                      np.repeat(np.arange(total)[:, None], 12,
                                axis=1).astype(np.float32))
        },
        stride=1,
        clip_len=1)
    ann = tmp_path / 'list.txt'
    ann.write_text('a.mp4 1\n')
    dataset = build_dataset(
        ann_file=str(ann),
        streams=dict(
            appearance=dict(type='bank', store=appearance),
            motion=dict(type='bank', store=motion)),
        pipeline=sequence_pipeline(
            num_steps=len(motion_starts), test_mode=True))
    inputs = dataset[0]['inputs']
    # Step t is the motion window starting at frame 4t and the appearance
    # of that same frame.
    assert inputs['motion'][:, 0].tolist() == motion_starts.tolist()
    assert inputs['appearance'][:, 0].tolist() == motion_starts.tolist()
    ann.write_text('b.mp4 1\n')
    with pytest.raises(KeyError, match=r"line 1: video 'b.mp4' is not in"):
        build_dataset(ann_file=str(ann), streams=dict(
            appearance=dict(type='bank', store=appearance)))
