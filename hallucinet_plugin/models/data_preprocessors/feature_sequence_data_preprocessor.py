from typing import Dict

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseDataPreprocessor


@MODELS.register_module()
class FeatureSequenceDataPreprocessor(BaseDataPreprocessor):
    """Stack each stream's feature sequences into one batch tensor.

    Precomputed features need no normalisation or colour handling: the
    inputs, a dict of streams (``PackActionInputs(collect_keys=...)``) each
    holding a list of ``(T, D)`` tensors, become a dict of ``(N, T, D)``
    float32 tensors on the model's device.
    """

    def forward(self, data: Dict, training: bool = False) -> Dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if not isinstance(inputs, dict):
            raise TypeError(
                'FeatureSequenceDataPreprocessor: the inputs must be a dict '
                'of streams; pack them with PackActionInputs(collect_keys='
                "('appearance', ...))")
        stacked = {}
        for name, seqs in inputs.items():
            shapes = {tuple(s.shape) for s in seqs}
            if len(shapes) != 1:
                raise ValueError(
                    f'stream {name!r}: sequences of shapes {sorted(shapes)} '
                    'in one batch; sample a fixed number of steps '
                    '(SampleFeatureSequence)')
            # N x [T, D] -> [N, T, D]
            stacked[name] = torch.stack(list(seqs)).float()
        return dict(inputs=stacked, data_samples=data.get('data_samples'))
