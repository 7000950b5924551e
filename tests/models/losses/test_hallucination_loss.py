import math

import pytest
import torch
from mmaction.registry import MODELS

import hallucinet_plugin  # noqa: F401


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_matches_formula_on_hand_computed_numbers():
    s = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    t = torch.tensor([[1.0, 2.0], [0.0, -0.5]])
    expected = sum((sigmoid(a) - sigmoid(b))**2
                   for a, b in [(0, 1), (2, 2), (-1, 0), (0.5, -0.5)]) / 4
    loss = MODELS.build(dict(type='HallucinationLoss', loss_weight=50.0))
    assert loss(s, t).item() == pytest.approx(50 * expected, rel=1e-6)
    # 0.5 - 0.731.. = -0.231..; spot-check one term by hand.
    assert (sigmoid(0) - sigmoid(1))**2 == pytest.approx(0.0534, abs=1e-4)


def test_plain_mse_option_and_gradient():
    s = torch.tensor([[0.0, 2.0]], requires_grad=True)
    t = torch.tensor([[1.0, 1.0]])
    loss = MODELS.build(
        dict(type='HallucinationLoss', loss_weight=2.0, use_sigmoid=False))
    value = loss(s, t)
    assert value.item() == pytest.approx(2.0 * (1 + 1) / 2)
    value.backward()
    torch.testing.assert_close(s.grad, torch.tensor([[-2.0, 2.0]]))
    # The teacher side never needs a gradient.
    assert not t.requires_grad


def test_shape_mismatch_is_an_error():
    loss = MODELS.build(dict(type='HallucinationLoss'))
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(2, 4\)'):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))
