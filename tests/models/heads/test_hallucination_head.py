import pytest
import torch
from mmaction.registry import MODELS

import hallucinet_plugin  # noqa: F401


def test_paper_head_is_one_linear_layer_and_relu():
    head = MODELS.build(
        dict(type='HallucinationHead', in_channels=8, out_channels=6))
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].weight.shape == (6, 8)
    x = torch.randn(5, 8)
    out = head(x)
    assert out.shape == (5, 6) and (out >= 0).all()
    expected = torch.relu(x @ linears[0].weight.T + linears[0].bias)
    torch.testing.assert_close(out, expected)


def test_hidden_layers_dropout_and_no_final_act():
    head = MODELS.build(
        dict(
            type='HallucinationHead',
            in_channels=8,
            out_channels=6,
            hidden_channels=(16, 12),
            dropout=0.5,
            final_act=False))
    sizes = [(m.in_features, m.out_features) for m in head.modules()
             if isinstance(m, torch.nn.Linear)]
    assert sizes == [(8, 16), (16, 12), (12, 6)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in head.modules()) == 3
    head.eval()
    torch.manual_seed(0)
    out = head(torch.randn(64, 8))
    assert (out < 0).any()


def test_loss_is_logged_as_loss_hallu_with_lambda():
    head = MODELS.build(
        dict(
            type='HallucinationHead',
            in_channels=4,
            out_channels=3,
            loss_hallu=dict(type='HallucinationLoss', loss_weight=50.0)))
    hallu, target = torch.zeros(2, 3), torch.zeros(2, 3)
    target[0, 0] = 100.0  # sigmoid -> 1, vs sigmoid(0) = 0.5
    losses = head.loss(hallu, target)
    assert set(losses) == {'loss_hallu'}
    assert losses['loss_hallu'].item() == pytest.approx(50 * 0.25 / 6)
    with pytest.raises(ValueError, match='out_channels'):
        head.loss(hallu, torch.zeros(2, 5))
