"""``FeatureSequenceDataPreprocessor``: a batch of per-video ``(T, D)``
streams becomes ``(N, T, D)`` float32 tensors, one per stream."""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401

init_default_scope('mmaction')


def preprocessor():
    return MODELS.build(dict(type='FeatureSequenceDataPreprocessor'))


def test_streams_are_stacked_as_float32():
    appearance = [torch.arange(12).reshape(3, 4).to(torch.uint8),
                  torch.ones(3, 4, dtype=torch.float64)]
    motion = [torch.zeros(3, 2), torch.ones(3, 2)]
    out = preprocessor()(
        dict(inputs=dict(appearance=appearance, motion=motion),
             data_samples=['a', 'b']))
    assert out['inputs']['appearance'].shape == (2, 3, 4)
    assert out['inputs']['motion'].shape == (2, 3, 2)
    assert all(v.dtype == torch.float32 for v in out['inputs'].values())
    assert torch.equal(out['inputs']['appearance'][0],
                       torch.arange(12.).reshape(3, 4))
    assert out['data_samples'] == ['a', 'b']


def test_unequal_lengths_and_unpacked_inputs_are_named():
    with pytest.raises(ValueError, match=r"stream 'motion'.*"
                       'SampleFeatureSequence'):
        preprocessor()(dict(inputs=dict(
            motion=[torch.zeros(3, 2), torch.zeros(4, 2)])))
    with pytest.raises(TypeError, match=r"collect_keys=\('appearance'"):
        preprocessor()(dict(inputs=[torch.zeros(3, 2)]))
