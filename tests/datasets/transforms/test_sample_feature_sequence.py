"""SampleFeatureSequence: TSN's segment sampling on the step axis."""
import numpy as np
from mmaction.registry import DATASETS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from tests.datasets.feature_sequences import write_npy_streams

init_default_scope('mmaction')

DIMS = dict(appearance=12, motion=6)


def test_training_samples_one_step_per_segment(tmp_path):
    data = write_npy_streams(str(tmp_path), [0], DIMS, [40])
    transform = DATASETS.build(dict(
        type='FeatureSequenceDataset', **data, pipeline=[
            dict(type='LoadFeatureSequence'),
            dict(type='SampleFeatureSequence', num_steps=4)])).pipeline
    seen = set()
    np.random.seed(0)
    for _ in range(50):
        info = DATASETS.build(dict(
            type='FeatureSequenceDataset', **data,
            pipeline=[])).get_data_info(0)
        inds = transform(info)['step_inds']
        assert [i // 10 for i in inds] == [0, 1, 2, 3]
        seen.update(inds.tolist())
    # Random places within the segments, not always the same ones.
    assert len(seen) > 20
