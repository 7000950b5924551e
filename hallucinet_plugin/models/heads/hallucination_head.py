from typing import Sequence

import torch
import torch.nn as nn
from mmaction.registry import MODELS

from ...utils.typing_utils import OptConfigType
from .base_hallucination_head import BaseHallucinationHead


@MODELS.register_module()
class HallucinationHead(BaseHallucinationHead):
    """HalluciNet's hallucination head: an MLP ending in ReLU.

    The paper's head is one fully connected layer followed by ReLU onto the
    3D-ResNeXt-101 teacher's 2048-d representation (the authors' code maps
    2048 -> 2048; with timm's VGG11-bn pre-logits it is 4096 -> 2048). The
    teacher's pooled post-ReLU activations are non-negative, so is the
    output.

    Args:
        in_channels (int): Student feature size per segment.
        out_channels (int): Teacher representation size.
        hidden_channels (Sequence[int]): Sizes of hidden layers before the
            output layer, each followed by ReLU; empty for the paper's head.
        dropout (float): Dropout before every linear layer.
        final_act (bool): End with ReLU, as in the paper.
        loss_hallu (dict): Config of the loss.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 hidden_channels: Sequence[int] = (),
                 dropout: float = 0.0,
                 final_act: bool = True,
                 loss_hallu: OptConfigType = dict(
                     type='HallucinationLoss', loss_weight=50.0),
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(in_channels, out_channels, loss_hallu, init_cfg)
        sizes = [in_channels, *hidden_channels, out_channels]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2 or final_act:
                layers.append(nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, num_segs: int = 1) -> torch.Tensor:
        """Hallucinate, shape (N * num_segs, in_channels) ->
        (N * num_segs, out_channels)."""
        return self.mlp(x)
