"""``models/utils.py``: whatever a backbone returns, one vector per
sample."""
import pytest
import torch

from hallucinet_plugin.models.utils import reduce_to_vector


@pytest.mark.parametrize('shape, dims', [
    ((2, 5, 3, 4, 4), (2, 3, 4)),  # (N, C, T, H, W) maps
    ((2, 5, 4, 4), (2, 3)),  # (N, C, H, W) maps
    ((2, 7, 5), (1, )),  # (N, L, C) tokens
])
def test_pools_every_axis_but_the_channels(shape, dims):
    x = torch.randn(shape)
    assert torch.equal(reduce_to_vector(x), x.mean(dim=dims))
    assert torch.equal(reduce_to_vector(x, 'max'), x.amax(dim=dims))
    assert reduce_to_vector(x).shape == (2, 5)


def test_vectors_pass_and_tuples_are_concatenated():
    vector = torch.randn(2, 5)
    assert reduce_to_vector(vector) is vector
    slow, fast = torch.randn(2, 8, 2, 3, 3), torch.randn(2, 4, 8, 3, 3)
    out = reduce_to_vector((slow, fast))
    assert out.shape == (2, 12)
    assert torch.equal(out[:, 8:], fast.mean(dim=(2, 3, 4)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown teacher pool 'sum'"):
        reduce_to_vector(torch.randn(2, 5, 3), 'sum')
    with pytest.raises(TypeError, match='cannot reduce a dict'):
        reduce_to_vector(dict(x=torch.randn(2, 5)))
