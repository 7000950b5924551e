from typing import Dict

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class SampleFeatureSequence(BaseTransform):
    """Pick ``num_steps`` steps of every stream, the same ones in each.

    TSN's segment sampling on the step axis: the ``T`` steps are split
    into ``num_steps`` equal segments and one step is taken from each, at
    a random place while training and at the middle in test mode. A video
    shorter than ``num_steps`` repeats steps, in order, so a batch has one
    shape.

    Required keys: ``feature_keys``, ``total_steps`` and the streams.

    Modified keys: the streams, to ``(num_steps, D)``.

    Added keys: ``step_inds`` (``(num_steps, )``).

    Args:
        num_steps (int): Steps per video.
        test_mode (bool): Middle of each segment instead of a random place.
    """

    def __init__(self, num_steps: int, test_mode: bool = False) -> None:
        if num_steps < 1:
            raise ValueError(f'SampleFeatureSequence: num_steps={num_steps}'
                             '; needs at least 1')
        self.num_steps = num_steps
        self.test_mode = test_mode

    def _indices(self, total: int) -> np.ndarray:
        edges = np.arange(self.num_steps + 1) * total / self.num_steps
        if self.test_mode:
            inds = (edges[:-1] + edges[1:]) / 2
        else:
            inds = edges[:-1] + np.random.rand(self.num_steps) * (
                edges[1:] - edges[:-1])
        return np.clip(np.floor(inds).astype(np.int64), 0, total - 1)

    def transform(self, results: Dict) -> Dict:
        inds = self._indices(results['total_steps'])
        for name in results['feature_keys']:
            results[name] = results[name][inds]
        results['step_inds'] = inds
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_steps={self.num_steps}, '
                f'test_mode={self.test_mode})')
