import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS

from ...utils.typing_utils import ConfigType
from .base_vlad_head import BaseVLADHead, vlad_aggregate


@MODELS.register_module()
class NeXtVLADHead(BaseVLADHead):
    """NeXtVLAD pooling of frame features with SE context gating.

    Lin, Xiao and Fan, "NeXtVLAD: An Efficient Neural Network to Aggregate
    Frame-level Features for Large-scale Video Classification", ECCV
    workshops 2018. Each frame feature ``x_t`` (size D) is expanded to
    ``x'_t = x_t W_e + b_e`` (size lambda * D, ``expansion``) and split
    into G groups (``groups``) ``x~_tg`` of size D' = lambda * D / G. From
    the whole ``x'_t``, each group gets an attention
    ``alpha_g(t) = sigmoid(x'_t w_g + b_g)`` and a soft assignment to K
    clusters ``a_gk(t) = softmax_k(BN(x'_t W_gk))``; the clusters are
    shared by the groups. The descriptor (K * D') is::

        v_k = sum_t sum_g alpha_g(t) a_gk(t) (x~_tg - c_k)

    normalised as a whole to unit L2 norm (as in the paper; no
    intra-normalisation per cluster), then BatchNorm, dropout,
    ``BN(x W_h)`` to ``hidden_channels``, the squeeze-and-excitation
    context gating (bottleneck ``hidden_channels // gating_reduction``) and
    a linear classifier.

    The defaults are the paper's YouTube-8M single model (K=128, lambda=2,
    G=8, 2048 hidden, gating reduction 8, dropout 0.5), except for its
    mixture-of-experts classifier, replaced by a linear one. The
    assignment has no bias (the BatchNorm's shift is one).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Frame feature size D.
        num_clusters (int): Number of clusters K.
        expansion (int): Expansion factor lambda.
        groups (int): Number of groups G; must divide
            ``expansion * in_channels``.
        hidden_channels (int): Size of the hidden layer.
        dropout_ratio (float): Dropout on the NeXtVLAD descriptor.
        gating (bool): Apply the context gating after the hidden layer.
        gating_reduction (int): Bottleneck ratio of the gating.
        loss_cls (dict): Classification loss config.
        **kwargs: Other :class:`BaseHead` arguments (``multi_class``,
            ``topk``, ``average_clips``, ``init_cfg`` ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_clusters: int = 128,
                 expansion: int = 2,
                 groups: int = 8,
                 hidden_channels: int = 2048,
                 dropout_ratio: float = 0.5,
                 gating: bool = True,
                 gating_reduction: int = 8,
                 loss_cls: ConfigType = dict(type='CrossEntropyLoss'),
                 **kwargs) -> None:
        for arg, value in (('num_clusters', num_clusters),
                           ('expansion', expansion), ('groups', groups)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'NeXtVLADHead: {arg} must be an integer >= 1, got '
                    f'{value!r}')
        expanded = expansion * in_channels
        if expanded % groups:
            raise ValueError(
                f'NeXtVLADHead: groups={groups} must divide expansion * '
                f'in_channels = {expansion} * {in_channels} = {expanded}')
        group_channels = expanded // groups
        super().__init__(
            num_classes,
            in_channels,
            descriptor_channels=num_clusters * group_channels,
            hidden_channels=hidden_channels,
            dropout_ratio=dropout_ratio,
            gating=gating,
            gating_reduction=gating_reduction,
            loss_cls=loss_cls,
            **kwargs)
        self.num_clusters = num_clusters
        self.expansion = expansion
        self.groups = groups
        self.group_channels = group_channels
        self.expand = nn.Linear(in_channels, expanded)
        self.group_attention = nn.Linear(expanded, groups)
        self.assign = nn.Linear(expanded, groups * num_clusters, bias=False)
        self.bn_assign = nn.BatchNorm1d(groups * num_clusters)
        # The scale of the usual VLAD initialisation: 1 / sqrt(D').
        self.centers = nn.Parameter(
            torch.randn(num_clusters, group_channels) / group_channels**0.5)
        self.bn_descriptor = nn.BatchNorm1d(num_clusters * group_channels)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a feature sequence into the NeXtVLAD descriptor.

        Args:
            x (Tensor): Shape (N, T, in_channels).

        Returns:
            Tensor: Shape (N, num_clusters * expansion * in_channels //
            groups), after the descriptor's BatchNorm.
        """
        n, t, _ = x.shape
        x = self.expand(x)  # [N, T, lambda * D]
        attention = torch.sigmoid(self.group_attention(x))  # [N, T, G]
        # BatchNorm over all frames of the batch, one channel per (g, k):
        # [N * T, G * K] -> [N, T * G, K]
        logits = self.bn_assign(self.assign(x.flatten(0, 1)))
        assign = logits.reshape(n, t * self.groups, self.num_clusters)
        # Each (frame, group) is one local descriptor, weighted by its
        # attention: [N, T * G, K] * [N, T * G, 1].
        assign = assign.softmax(dim=-1) * attention.reshape(n, -1, 1)
        # [N, T, lambda * D] -> [N, T * G, D']
        x = x.reshape(n, t * self.groups, self.group_channels)
        vlad = vlad_aggregate(x, assign, self.centers)  # [N, K, D']
        vlad = F.normalize(vlad.flatten(1), dim=1)
        return self.bn_descriptor(vlad)
