import inspect
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS

from ...utils.typing_utils import OptConfigType
from .base_hallucination_head import BaseHallucinationHead

_UNITS = ('monet', 'mlp', 'gru', 'bigru', 'conv1d')
_ACTS = dict(tanh=torch.tanh, relu=F.relu)


@MODELS.register_module()
class MoNetHead(BaseHallucinationHead):
    """MoNet: hallucinates flow-stream features from appearance features.

    Tang, Ma and Zhou, "Hallucinating Optical Flow Features for Video
    Classification", IJCAI 2019. The head reads the sequence of ``T``
    appearance features ``x_1..x_T`` of a video and outputs ``T``
    hallucinated flow features ``s_1..s_T`` (the state, of size
    ``out_channels``). One MoNet layer updates the state of the previous
    layer ``s`` (zeros before the first layer)::

        r_f = sigmoid(W_rf x_t + U_rf * s[t-1:t+2])
        r_b = sigmoid(W_rb x_t + U_rb * s[t-1:t+2])
        h_t = act(W_h x_t + U_h [s_{t+1} * r_b, s_{t-1} * r_f])
        [z~, z~_b, z~_f] = softmax([a_z, a_zb, a_zf])  (over the three)
            with a_g = W_g x_t + U_g * s[t-1:t+2]
        s_t = z~ * h_t + z~_b * s_{t+1} + z~_f * s_{t-1}

    ``s_0 = s_{T+1} = 0`` (zero padding), and the ``num_layers`` layers
    share their weights: the recursion is unrolled, not stacked. The first
    layer sees only ``x_t``; each further one reaches one more step on
    either side, so ``L`` layers see ``L - 1`` neighbours each way.

    Reading of the authors' TF code (``frame_level_models.py`` of
    github.com/YongyiTang92/MoNet-Features, ``inference_lateFuse_
    ConvTemporalGRU``), which this module follows:

    * the six x-projections are one width-1 temporal convolution, split
      into ``z, z_b, z_f, r_b, r_f, h`` (their ``z_t, z_{t+1}, z_{t-1},
      r_{t+1}, r_{t-1}, h_t``); computed once, outside the layer loop;
    * the five s-projections are one width-3 temporal convolution of the
      state, zero padded, split into the gate terms ``z, z_b, z_f, r_b,
      r_f``. So every gate sees the window ``s_{t-1}, s_t, s_{t+1}``
      (written ``U * s[t-1:t+2]`` above), not only the one neighbour that
      the paper's equations show; the paper's form is the special case of
      a kernel with the other taps zero. ``h`` has no term here;
    * ``U_h`` is two fully connected layers on the gated neighbours,
      summed; one linear map of their concatenation is the same thing;
    * the softmax mixes the three update gates elementwise;
    * ``act`` is ``tanh`` unless their ``last_relu`` flag asks for ReLU
      (the paper's equation writes ReLU); 5 layers by default;
    * their state has the input's width; here the x-projection maps
      ``in_channels`` to ``6 * out_channels`` so the two can differ;
    * their s-convolution and both fully connected layers carry biases,
      which only add to the x-projection's bias; they are left out here
      (same function class, no redundant parameters).

    With the backward connections removed (``z_b`` forced to 0 and the
    s-taps on ``s_t`` and ``s_{t+1}`` zero) one layer is a GRU cell (Cho et
    al., reset gate before ``U_h``) whose hidden state is ``s_{t-1}`` and
    update gate ``sigmoid(a_z - a_zf)``; unrolled over ``T`` layers it is a
    GRU over time (see the tests).

    The ablation baselines of the paper's Table 1, selected by ``unit``,
    map the same sequences: ``'mlp'`` (a per-step MLP of ``num_layers``
    linear layers), ``'gru'`` / ``'bigru'`` (``num_layers`` stacked
    (bidirectional) GRU layers and a linear output layer) and ``'conv1d'``
    (``num_layers`` width-3 temporal convolutions). Their hidden layers are
    ``hidden_channels`` wide and, for ``'mlp'`` and ``'conv1d'``, followed by
    ``act``; their output layer is linear.

    Args:
        in_channels (int): Appearance feature size per step.
        out_channels (int): Flow feature size per step (MoNet's state).
        num_layers (int): MoNet layers unrolled with shared weights, or the
            depth of a baseline.
        act (str): ``'tanh'`` or ``'relu'``: MoNet's ``psi`` and the
            baselines' hidden activation.
        unit (str): One of ``'monet'``, ``'mlp'``, ``'gru'``, ``'bigru'``,
            ``'conv1d'``.
        hidden_channels (int, optional): Hidden width of the baselines;
            ``None`` means ``out_channels``. MoNet has no hidden layer, its
            state is the output, so it accepts only ``None``.
        dropout (float): Dropout on the input features.
        loss_hallu (dict): Config of the loss: :class:`MoNetLoss` (given
            ``num_segs``) or any loss taking ``(s_feature, t_feature)``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_layers: int = 5,
                 act: str = 'tanh',
                 unit: str = 'monet',
                 hidden_channels: Optional[int] = None,
                 dropout: float = 0.0,
                 loss_hallu: OptConfigType = dict(type='MoNetLoss'),
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(in_channels, out_channels, loss_hallu, init_cfg)
        if unit not in _UNITS:
            raise ValueError(f'MoNetHead: unit={unit!r}; expected one of '
                             f'{_UNITS}')
        if act not in _ACTS:
            raise ValueError(f'MoNetHead: act={act!r}; expected one of '
                             f'{tuple(_ACTS)}')
        if num_layers < 1:
            raise ValueError(f'MoNetHead: num_layers={num_layers}; needs at '
                             'least 1')
        if unit == 'monet' and hidden_channels is not None:
            raise ValueError(
                "MoNetHead: hidden_channels is for the baselines; unit='monet'"
                ' keeps its state at out_channels, so leave it None')
        self.num_layers = num_layers
        self.unit = unit
        self.act_name = act
        self.act = _ACTS[act]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        hidden = hidden_channels or out_channels
        self.hidden_channels = hidden
        # Whether the loss wants the time axis (MoNetLoss's classifier).
        self._loss_takes_num_segs = 'num_segs' in inspect.signature(
            self.loss_hallu.forward).parameters

        if unit == 'monet':
            dim = out_channels
            self.x_proj = nn.Conv1d(in_channels, 6 * dim, kernel_size=1)
            self.s_proj = nn.Conv1d(
                dim, 5 * dim, kernel_size=3, padding=1, bias=False)
            self.h_proj = nn.Conv1d(2 * dim, dim, kernel_size=1, bias=False)
        elif unit == 'mlp':
            sizes = [in_channels] + [hidden] * (num_layers - 1)
            self.layers = nn.ModuleList(
                nn.Linear(c, h)
                for c, h in zip(sizes, sizes[1:] + [out_channels]))
        elif unit in ('gru', 'bigru'):
            self.rnn = nn.GRU(
                in_channels,
                hidden,
                num_layers,
                batch_first=True,
                bidirectional=unit == 'bigru')
            self.fc_out = nn.Linear(hidden * (1 + (unit == 'bigru')),
                                    out_channels)
        else:
            sizes = [in_channels] + [hidden] * (num_layers - 1)
            self.layers = nn.ModuleList(
                nn.Conv1d(c, h, kernel_size=3, padding=1)
                for c, h in zip(sizes, sizes[1:] + [out_channels]))

    def forward(self, x: torch.Tensor, num_segs: int = 1) -> torch.Tensor:
        """Hallucinate flow features for every step.

        Args:
            x (Tensor): Appearance features, shape
                (N * num_segs, in_channels), the steps of a video adjacent.
            num_segs (int): Steps ``T`` per video.

        Returns:
            Tensor: Shape (N * num_segs, out_channels).
        """
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'MoNetHead: input of shape {tuple(x.shape)}; expected '
                f'(N * num_segs, in_channels={self.in_channels})')
        if num_segs < 1 or x.shape[0] % num_segs:
            raise ValueError(
                f'MoNetHead: {x.shape[0]} input rows do not split into '
                f'videos of num_segs={num_segs} steps')
        x = self.dropout(x)
        # [N * T, C_in] -> [N, T, C_in]
        x = x.view(-1, num_segs, self.in_channels)
        if self.unit == 'monet':
            out = self._forward_monet(x)
        elif self.unit == 'mlp':
            out = x
            for i, layer in enumerate(self.layers):
                out = layer(out)
                if i < self.num_layers - 1:
                    out = self.act(out)
        elif self.unit in ('gru', 'bigru'):
            # [N, T, C_in] -> [N, T, H * directions] -> [N, T, C_out]
            out = self.fc_out(self.rnn(x)[0])
        else:
            # [N, T, C_in] -> [N, C_in, T]
            out = x.transpose(1, 2)
            for i, layer in enumerate(self.layers):
                out = layer(out)
                if i < self.num_layers - 1:
                    out = self.act(out)
            # [N, C_out, T] -> [N, T, C_out]
            out = out.transpose(1, 2)
        # [N, T, C_out] -> [N * T, C_out]
        return out.reshape(-1, self.out_channels)

    def monet_layer(self, x: torch.Tensor,
                    state: torch.Tensor) -> torch.Tensor:
        """Apply one MoNet layer to the state of the previous layer.

        Args:
            x (Tensor): Appearance features, shape (N, T, in_channels).
            state (Tensor): Previous state, shape (N, T, out_channels).

        Returns:
            Tensor: The new state, shape (N, T, out_channels).
        """
        if self.unit != 'monet':
            raise RuntimeError(f"MoNetHead: monet_layer needs unit='monet', "
                               f'this head has unit={self.unit!r}')
        # [N, T, C] -> [N, C, T] for the temporal convolutions.
        new = self._monet_layer(
            self.x_proj(x.transpose(1, 2)), state.transpose(1, 2))
        return new.transpose(1, 2)

    def _forward_monet(self, x: torch.Tensor) -> torch.Tensor:
        # [N, T, C_in] -> [N, 6 * C_out, T]; x does not change across
        # layers, so its projections are computed once.
        x_gates = self.x_proj(x.transpose(1, 2))
        state = x_gates.new_zeros(x.shape[0], self.out_channels, x.shape[1])
        for _ in range(self.num_layers):
            state = self._monet_layer(x_gates, state)
        # [N, C_out, T] -> [N, T, C_out]
        return state.transpose(1, 2)

    def _monet_layer(self, x_gates: torch.Tensor,
                     state: torch.Tensor) -> torch.Tensor:
        """One layer, all steps at once; shapes (N, 6D, T), (N, D, T)."""
        xz, xzb, xzf, xrb, xrf, xh = x_gates.chunk(6, dim=1)
        sz, szb, szf, srb, srf = self.s_proj(state).chunk(5, dim=1)
        # Neighbours along time, zero beyond the ends of the sequence.
        s_prev = F.pad(state[..., :-1], (1, 0))  # s_{t-1}
        s_next = F.pad(state[..., 1:], (0, 1))  # s_{t+1}
        r_b = torch.sigmoid(xrb + srb)
        r_f = torch.sigmoid(xrf + srf)
        h = self.act(
            xh + self.h_proj(torch.cat([s_next * r_b, s_prev * r_f], dim=1)))
        # [3, N, D, T]: the three update gates compete per element.
        z = torch.stack([xz + sz, xzb + szb, xzf + szf]).softmax(dim=0)
        return z[0] * h + z[1] * s_next + z[2] * s_prev

    def loss(self,
             hallu: torch.Tensor,
             target: torch.Tensor,
             num_segs: int = 1) -> Dict[str, torch.Tensor]:
        """Compare hallucinated and true flow features.

        Args:
            hallu (Tensor): Shape (N * num_segs, out_channels).
            target (Tensor): True flow features, same shape.
            num_segs (int): Steps per video, passed to losses that take it.

        Returns:
            dict[str, Tensor]: The loss's ``loss_*`` terms.
        """
        if not self._loss_takes_num_segs:
            return super().loss(hallu, target, num_segs)
        if target.shape != hallu.shape:
            raise ValueError(
                f'MoNetHead: the flow target has shape '
                f'{tuple(target.shape)} but the head hallucinates '
                f'{tuple(hallu.shape)}; check out_channels '
                f'({self.out_channels}) against the flow feature size.')
        loss = self.loss_hallu(hallu, target, num_segs=num_segs)
        if isinstance(loss, dict):
            return loss
        return dict(loss_hallu=loss)
