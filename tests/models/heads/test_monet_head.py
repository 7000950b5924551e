import math

import pytest
import torch
from mmaction.registry import MODELS

import hallucinet_plugin.models.heads.monet_head  # noqa: F401
import hallucinet_plugin.models.losses.monet_loss  # noqa: F401
from hallucinet_plugin.models.heads.monet_head import MoNetHead

UNITS = ('monet', 'mlp', 'gru', 'bigru', 'conv1d')
IN, OUT = 6, 4


def _head(**kwargs) -> MoNetHead:
    torch.manual_seed(0)
    return MoNetHead(IN, OUT, **kwargs)


def _split(vector, dim, parts):
    return [vector[i * dim:(i + 1) * dim] for i in range(parts)]


def reference_layer(head, x, state):
    """The paper's equations, one video and one step at a time.

    Args:
        x: (N, T, IN); state: (N, T, D), the previous layer's state.
    """
    dim = head.out_channels
    w_x, b_x = head.x_proj.weight[:, :, 0], head.x_proj.bias
    w_s = head.s_proj.weight  # (5D, D, 3): taps on s_{t-1}, s_t, s_{t+1}
    u_h = head.h_proj.weight[:, :, 0]  # (D, 2D) on [s_{t+1} r_b, s_{t-1} r_f]
    act = torch.tanh if head.act_name == 'tanh' else torch.relu
    num, steps = x.shape[:2]
    zero = state.new_zeros(dim)
    out = torch.empty_like(state)
    for n in range(num):
        for t in range(steps):
            prev = state[n, t - 1] if t > 0 else zero
            nxt = state[n, t + 1] if t < steps - 1 else zero
            gx = w_x @ x[n, t] + b_x
            gs = (
                w_s[:, :, 0] @ prev + w_s[:, :, 1] @ state[n, t] +
                w_s[:, :, 2] @ nxt)
            xz, xzb, xzf, xrb, xrf, xh = _split(gx, dim, 6)
            sz, szb, szf, srb, srf = _split(gs, dim, 5)
            r_b = 1 / (1 + torch.exp(-(xrb + srb)))
            r_f = 1 / (1 + torch.exp(-(xrf + srf)))
            h = act(xh + u_h[:, :dim] @ (nxt * r_b) +
                    u_h[:, dim:] @ (prev * r_f))
            e_z, e_b, e_f = (torch.exp(xz + sz), torch.exp(xzb + szb),
                             torch.exp(xzf + szf))
            out[n, t] = (e_z * h + e_b * nxt + e_f * prev) / (e_z + e_b + e_f)
    return out


@pytest.mark.parametrize('act', ['tanh', 'relu'])
def test_monet_layer_matches_per_step_reference(act):
    head = _head(act=act)
    x, state = torch.randn(2, 5, IN), torch.randn(2, 5, OUT)
    with torch.no_grad():
        got = head.monet_layer(x, state)
        want = reference_layer(head, x, state)
    assert got.shape == (2, 5, OUT)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_forward_unrolls_shared_layers_from_zero_state():
    head = _head(num_layers=3)
    x = torch.randn(2, 5, IN)
    with torch.no_grad():
        state = torch.zeros(2, 5, OUT)
        for _ in range(3):
            state = reference_layer(head, x, state)
        # [N, T, C] -> [N * T, C], the layout the recognizer uses.
        got = head(x.reshape(10, IN), num_segs=5)
    torch.testing.assert_close(
        got, state.reshape(10, OUT), atol=1e-5, rtol=1e-5)
    # One projection of each kind, reused by every layer.
    assert sum(p.numel() for p in head.parameters()) == ((IN + 1) * 6 * OUT +
                                                         OUT * 5 * OUT * 3 +
                                                         2 * OUT * OUT)


def _remove_backward_connections(head):
    dim = head.out_channels
    with torch.no_grad():
        # Gates see only s_{t-1}: drop the taps on s_t and s_{t+1}.
        head.s_proj.weight[:, :, 1:] = 0
        # z_b out of the softmax: exp(-1e4) is exactly 0 in float32.
        head.x_proj.bias[dim:2 * dim] = -1e4
        # h_t no longer reads s_{t+1}.
        head.h_proj.weight[:, :dim] = 0


def gru_cell(head, x_t, h_prev):
    """A GRU cell (Cho et al. 2014) built from the MoNet weights.

    Update gate u = sigmoid((W_z - W_zf) x + (U_z - U_zf) h + b): the
    two-way softmax of MoNet's z and z_f. Reset gate r = r_f. Candidate
    act(W_h x + U_h (r * h)). New state u * candidate + (1 - u) * h.
    """
    dim = head.out_channels
    gx = head.x_proj.weight[:, :, 0] @ x_t + head.x_proj.bias
    gs = head.s_proj.weight[:, :, 0] @ h_prev
    xz, _, xzf, _, xrf, xh = _split(gx, dim, 6)
    sz, _, szf, _, srf = _split(gs, dim, 5)
    update = torch.sigmoid((xz + sz) - (xzf + szf))
    reset = torch.sigmoid(xrf + srf)
    act = torch.tanh if head.act_name == 'tanh' else torch.relu
    cand = act(xh + head.h_proj.weight[:, dim:, 0] @ (reset * h_prev))
    return update * cand + (1 - update) * h_prev


def test_one_layer_without_backward_connections_is_a_gru_cell():
    head = _head()
    _remove_backward_connections(head)
    x, state = torch.randn(2, 5, IN), torch.randn(2, 5, OUT)
    with torch.no_grad():
        got = head.monet_layer(x, state)
        for n in range(2):
            for t in range(5):
                prev = state[n, t - 1] if t > 0 else torch.zeros(OUT)
                torch.testing.assert_close(
                    got[n, t],
                    gru_cell(head, x[n, t], prev),
                    atol=1e-5,
                    rtol=1e-5)
        # Control: with the backward connections the layer is no GRU cell.
        full = _head().monet_layer(x, state)
    assert not torch.allclose(full, got, atol=1e-3)


@pytest.mark.parametrize('num_layers', [1, 3, 5])
def test_forward_only_unrolled_monet_is_a_truncated_gru(num_layers):
    """Layer l at step t reads layer l - 1 at step t - 1, so L layers are
    a GRU over the last L steps from a zero state; L = T is a full GRU."""
    head = _head(num_layers=num_layers)
    _remove_backward_connections(head)
    steps = 5
    x = torch.randn(2, steps, IN)
    with torch.no_grad():
        got = head(x.reshape(-1, IN), num_segs=steps).view(2, steps, OUT)
        for n in range(2):
            for t in range(steps):
                h = torch.zeros(OUT)
                for tau in range(max(0, t - num_layers + 1), t + 1):
                    h = gru_cell(head, x[n, tau], h)
                torch.testing.assert_close(got[n, t], h, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('unit', UNITS)
def test_output_shape_and_time_axis(unit):
    head = _head(unit=unit, num_layers=2).eval()
    num, steps = 3, 4
    x = torch.randn(num * steps, IN)
    with torch.no_grad():
        out = head(x, num_segs=steps)
        assert out.shape == (num * steps, OUT)
        # Videos are independent: change video 1 only.
        x2 = x.clone()
        x2[steps:2 * steps] += 1
        out2 = head(x2, num_segs=steps)
        torch.testing.assert_close(out2[:steps], out[:steps])
        torch.testing.assert_close(out2[2 * steps:], out[2 * steps:])
        assert not torch.allclose(out2[steps:2 * steps], out[steps:2 * steps])
        # Steps mix along time, except in the per-step MLP.
        x3 = x.clone()
        x3[0] += 1
        out3 = head(x3, num_segs=steps)
    moved = ~torch.isclose(out3[1:steps], out[1:steps]).all(dim=1)
    if unit == 'mlp':
        assert not moved.any()
    elif unit in ('bigru', 'gru'):
        assert moved.all()
    elif unit == 'monet':
        # Layer 1 sees only x_t (zero state); each further layer one more
        # neighbour: L = 2 layers reach one step.
        assert moved.tolist() == [True, False, False]
    else:  # two width-3 convolutions reach two steps
        assert moved.tolist() == [True, True, False]


@pytest.mark.parametrize('unit', UNITS)
def test_gradients_reach_every_parameter(unit):
    head = _head(
        unit=unit,
        num_layers=2,
        hidden_channels=None if unit == 'monet' else 5,
        dropout=0.1)
    head.train()
    x = torch.randn(2 * 3, IN, requires_grad=True)
    out = head(x, num_segs=3)
    losses = head.loss(out, torch.randn(6, OUT), num_segs=3)
    assert set(losses) == {'loss_hallu'}
    losses['loss_hallu'].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_baseline_sizes():
    head = _head(unit='bigru', num_layers=2, hidden_channels=5)
    assert head.rnn.hidden_size == 5 and head.rnn.num_layers == 2
    assert head.fc_out.in_features == 10
    mlp = _head(unit='mlp', num_layers=3, hidden_channels=5)
    assert [(m.in_features, m.out_features) for m in mlp.layers] == [(IN, 5),
                                                                     (5, 5),
                                                                     (5, OUT)]
    conv = _head(unit='conv1d', num_layers=1)
    assert [(m.in_channels, m.out_channels, m.kernel_size)
            for m in conv.layers] == [(IN, OUT, (3, ))]


def test_defaults_and_registry():
    head = MODELS.build(
        dict(type='MoNetHead', in_channels=IN, out_channels=OUT))
    assert isinstance(head, MoNetHead)
    assert (head.num_layers, head.unit, head.act_name) == (5, 'monet', 'tanh')
    assert type(head.loss_hallu).__name__ == 'MoNetLoss'
    assert isinstance(head.dropout, torch.nn.Identity)


def test_loss_gets_num_segs():
    classifier = dict(
        type='TSNHead', num_classes=3, in_channels=OUT, dropout_ratio=0.)
    head = _head(
        loss_hallu=dict(type='MoNetLoss', alpha=10., classifier=classifier))
    hallu, target = torch.randn(6, OUT), torch.randn(6, OUT)
    by_head = head.loss(hallu, target, num_segs=3)
    direct = head.loss_hallu(hallu, target, num_segs=3)
    per_step = head.loss_hallu(hallu, target, num_segs=1)
    assert set(by_head) == {'loss_hallu', 'loss_hallu_prob'}
    torch.testing.assert_close(by_head, direct)
    assert not torch.isclose(by_head['loss_hallu_prob'],
                             per_step['loss_hallu_prob'])


def test_plain_hallucination_loss_still_works():
    head = _head(loss_hallu=dict(type='HallucinationLoss', loss_weight=2.))
    hallu, target = torch.randn(6, OUT), torch.randn(6, OUT)
    losses = head.loss(hallu, target, num_segs=3)
    want = 2. * (hallu.sigmoid() - target.sigmoid()).pow(2).mean()
    torch.testing.assert_close(losses['loss_hallu'], want)
    with pytest.raises(ValueError, match='out_channels'):
        head.loss(hallu, torch.randn(6, OUT + 1), num_segs=3)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='unit'):
        MoNetHead(IN, OUT, unit='lstm')
    with pytest.raises(ValueError, match='act'):
        MoNetHead(IN, OUT, act='gelu')
    with pytest.raises(ValueError, match='num_layers'):
        MoNetHead(IN, OUT, num_layers=0)
    with pytest.raises(ValueError, match='hidden_channels'):
        MoNetHead(IN, OUT, hidden_channels=8)
    head = _head()
    with pytest.raises(ValueError, match='num_segs=4'):
        head(torch.randn(6, IN), num_segs=4)
    with pytest.raises(ValueError, match='in_channels=6'):
        head(torch.randn(6, IN + 1), num_segs=3)
    with pytest.raises(ValueError, match='out_channels'):
        head.loss(torch.randn(6, OUT), torch.randn(6, OUT + 1), num_segs=3)
    with pytest.raises(RuntimeError, match="unit='monet'"):
        _head(unit='gru').monet_layer(
            torch.randn(1, 2, IN), torch.randn(1, 2, OUT))


def test_relu_state_is_convex_mix_of_nonnegative_parts():
    # With psi = ReLU and a zero initial state every state is a convex
    # combination of non-negative candidates and zeros: non-negative, like
    # pooled post-ReLU flow features.
    head = _head(act='relu', num_layers=4)
    out = head(torch.randn(8, IN), num_segs=4)
    assert (out >= 0).all() and out.abs().sum() > 0
    assert not math.isnan(out.sum().item())
