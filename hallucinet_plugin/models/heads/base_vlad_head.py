"""The common part of the VLAD classification heads (NetVLAD, NeXtVLAD)."""
from abc import abstractmethod
from typing import Optional

import torch
import torch.nn as nn
from mmaction.models.heads.base import BaseHead

from ...utils.typing_utils import ConfigType


def vlad_aggregate(x: torch.Tensor, assign: torch.Tensor,
                   centers: torch.Tensor) -> torch.Tensor:
    """Sum the weighted residuals of descriptors to the cluster centres.

    ``V[n, k] = sum_m assign[n, m, k] * (x[n, m] - centers[k])``, computed
    as ``assign^T x - (sum_m assign) centers`` so that no (M, K, D)
    residual tensor is formed.

    Args:
        x (Tensor): Local descriptors, shape (N, M, D).
        assign (Tensor): Their weights per cluster, shape (N, M, K).
        centers (Tensor): Cluster centres, shape (K, D).

    Returns:
        Tensor: Unnormalised VLAD, shape (N, K, D).
    """
    weighted = torch.bmm(assign.transpose(1, 2), x)  # [N, K, D]
    return weighted - assign.sum(dim=1).unsqueeze(-1) * centers


class ContextGating(nn.Module):
    """Context Gating, ``y = x * sigmoid(gate(x))``.

    Without ``reduction`` the gate is Miech et al.'s full ``BN(x W)``
    (Learnable pooled features with Context Gating, 2017). With it, the
    gate is the squeeze-and-excitation bottleneck of NeXtVLAD (Lin et al.,
    2018): ``W2 ReLU(BN(x W1)) + b2`` with ``channels // reduction`` hidden
    units. The first layer has no bias because BatchNorm's shift plays it.

    Args:
        channels (int): Feature size.
        reduction (int, optional): Bottleneck ratio; None for the full
            ``channels x channels`` gate.
    """

    def __init__(self, channels: int, reduction: Optional[int] = None) -> None:
        super().__init__()
        if reduction is None:
            self.gate = nn.Sequential(
                nn.Linear(channels, channels, bias=False),
                nn.BatchNorm1d(channels))
        else:
            squeezed = channels // reduction
            self.gate = nn.Sequential(
                nn.Linear(channels, squeezed, bias=False),
                nn.BatchNorm1d(squeezed), nn.ReLU(inplace=True),
                nn.Linear(squeezed, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate the features.

        Args:
            x (Tensor): Shape (N, channels).

        Returns:
            Tensor: Shape (N, channels).
        """
        return x * torch.sigmoid(self.gate(x))


class BaseVLADHead(BaseHead):
    """Classification head that pools a video's frame features by VLAD.

    The forward path follows timm's: :meth:`forward` brings any accepted
    input layout to a feature sequence (N, T, in_channels),
    :meth:`forward_features` (the subclass's) pools it into one descriptor
    per video, and :meth:`forward_head` applies dropout, the hidden layer
    ``BN(x W)``, context gating and the linear classifier. VLAD pooling is
    a sum over frames, so frame order does not matter and all ``num_segs``
    frames of a video (all test views too) form one set.

    The hidden layer's and the gate's BatchNorms see one row per video:
    train with more than two videos per device, since with two they map
    every feature to about +-1 and pass almost no gradient back. The
    layers keep PyTorch's default initialisation unless ``init_cfg`` sets
    one.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Frame feature size.
        descriptor_channels (int): Size of the pooled descriptor the
            subclass's :meth:`forward_features` returns.
        hidden_channels (int): Size of the hidden layer.
        dropout_ratio (float): Dropout on the pooled descriptor.
        gating (bool): Apply context gating after the hidden layer.
        gating_reduction (int, optional): Bottleneck ratio of the gate (see
            :class:`ContextGating`); None for the full gate.
        loss_cls (dict): Classification loss config, e.g.
            ``dict(type='BCELossWithLogits')`` with ``multi_class=True``.
        **kwargs: Other :class:`BaseHead` arguments (``multi_class``,
            ``label_smooth_eps``, ``topk``, ``average_clips``,
            ``init_cfg``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 descriptor_channels: int,
                 hidden_channels: int,
                 dropout_ratio: float,
                 gating: bool = True,
                 gating_reduction: Optional[int] = None,
                 loss_cls: ConfigType = dict(type='CrossEntropyLoss'),
                 **kwargs) -> None:
        name = type(self).__name__
        if gating_reduction is not None and not \
                1 <= gating_reduction <= hidden_channels:
            raise ValueError(
                f'{name}: gating_reduction must be in [1, hidden_channels='
                f'{hidden_channels}], got {gating_reduction}')
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, **kwargs)
        self.hidden_channels = hidden_channels
        self.dropout_ratio = dropout_ratio
        self.dropout = nn.Dropout(dropout_ratio)
        # No bias: the BatchNorm that follows removes it.
        self.fc_hidden = nn.Linear(
            descriptor_channels, hidden_channels, bias=False)
        self.bn_hidden = nn.BatchNorm1d(hidden_channels)
        self.gating = ContextGating(
            hidden_channels, gating_reduction) if gating else nn.Identity()
        self.fc_cls = nn.Linear(hidden_channels, num_classes)

    def forward(self,
                x: torch.Tensor,
                num_segs: Optional[int] = None,
                **kwargs) -> torch.Tensor:
        """Classify each video from its frame features.

        Args:
            x (Tensor): Frame features in one of three layouts: feature
                maps (N * num_segs, C, H, W) from a 2D recognizer (averaged
                over space), vectors (N * num_segs, C), or a feature
                sequence (N, T, C).
            num_segs (int, optional): Frames per video; needed for the
                first two layouts, and if given for a sequence it must be
                T.
            **kwargs: Other recognizer keywords (``loss_aux``,
                ``fcn_test``), unused.

        Returns:
            Tensor: Class scores, shape (N, num_classes).
        """
        x = self.to_sequence(x, num_segs)
        return self.forward_head(self.forward_features(x))

    def to_sequence(self,
                    x: torch.Tensor,
                    num_segs: Optional[int] = None) -> torch.Tensor:
        """Bring frame features to a sequence per video.

        Args:
            x (Tensor): Shape (N * num_segs, C, H, W), (N * num_segs, C) or
                (N, T, C), see :meth:`forward`.
            num_segs (int, optional): Frames per video.

        Returns:
            Tensor: Shape (N, T, C).
        """
        name = type(self).__name__
        if x.dim() == 4:
            # [N * num_segs, C, H, W] -> [N * num_segs, C]
            x = x.mean(dim=(2, 3))
        if x.dim() == 2:
            if num_segs is None or num_segs < 1 or x.shape[0] % num_segs:
                raise ValueError(
                    f'{name}: num_segs={num_segs} does not split the '
                    f'{x.shape[0]} frame features of the batch into videos')
            # [N * num_segs, C] -> [N, num_segs, C]
            x = x.reshape(-1, num_segs, x.shape[1])
        elif x.dim() == 3:
            if num_segs is not None and num_segs != x.shape[1]:
                raise ValueError(
                    f'{name}: num_segs={num_segs} but the feature sequence '
                    f'x of shape {tuple(x.shape)} has T={x.shape[1]}')
        else:
            raise ValueError(
                f'{name}: x must have shape (N * num_segs, C, H, W), '
                f'(N * num_segs, C) or (N, T, C), got {tuple(x.shape)}')
        if x.shape[2] != self.in_channels:
            raise ValueError(f'{name}: features have {x.shape[2]} channels, '
                             f'in_channels is {self.in_channels}')
        return x

    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a feature sequence into one descriptor per video.

        Args:
            x (Tensor): Shape (N, T, in_channels).

        Returns:
            Tensor: Shape (N, descriptor_channels).
        """

    def forward_head(self,
                     x: torch.Tensor,
                     pre_logits: bool = False) -> torch.Tensor:
        """Classify pooled descriptors.

        Args:
            x (Tensor): Descriptors, shape (N, descriptor_channels).
            pre_logits (bool): Return the gated hidden features instead of
                the class scores.

        Returns:
            Tensor: Class scores (N, num_classes), or hidden features
            (N, hidden_channels) with ``pre_logits``.
        """
        x = self.bn_hidden(self.fc_hidden(self.dropout(x)))
        x = self.gating(x)
        return x if pre_logits else self.fc_cls(x)
