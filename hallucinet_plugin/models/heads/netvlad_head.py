import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS

from ...utils.typing_utils import ConfigType
from .base_vlad_head import BaseVLADHead, vlad_aggregate


@MODELS.register_module()
class NetVLADHead(BaseVLADHead):
    """NetVLAD pooling of frame features with Context Gating.

    Miech, Laptev and Sivic, "Learnable pooled features with Context Gating
    for video classification", 2017 (their YouTube-8M model), with the
    NetVLAD layer of Arandjelovic et al., CVPR 2016. Each frame feature
    ``x_t`` (size D) is softly assigned to K clusters,
    ``a_tk = softmax_k(BN(x_t W))``, and the video descriptor sums the
    residuals ``V_k = sum_t a_tk (x_t - c_k)``. Each ``V_k`` is
    L2-normalised (intra-normalisation), then the flattened (K * D)
    descriptor is, and it goes through dropout, ``BN(x W_h)`` to
    ``hidden_channels``, Context Gating ``y = x * sigmoid(BN(x W_g))`` and
    a linear classifier.

    Differences from the paper's YouTube-8M model: the assignment has no
    bias (the BatchNorm's shift is one) and the classifier is linear
    instead of a gated mixture of experts. Mind the size of the hidden
    layer, ``num_clusters * in_channels * hidden_channels`` weights (134M
    with the defaults on 2048-d ResNet-50 features).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Frame feature size D.
        num_clusters (int): Number of clusters K.
        hidden_channels (int): Size of the hidden layer.
        dropout_ratio (float): Dropout on the VLAD descriptor.
        gating (bool): Apply Context Gating after the hidden layer.
        loss_cls (dict): Classification loss config.
        **kwargs: Other :class:`BaseHead` arguments (``multi_class``,
            ``topk``, ``average_clips``, ``init_cfg`` ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_clusters: int = 64,
                 hidden_channels: int = 1024,
                 dropout_ratio: float = 0.5,
                 gating: bool = True,
                 loss_cls: ConfigType = dict(type='CrossEntropyLoss'),
                 **kwargs) -> None:
        if num_clusters < 1:
            raise ValueError(
                f'NetVLADHead: num_clusters must be >= 1, got {num_clusters}')
        super().__init__(
            num_classes,
            in_channels,
            descriptor_channels=num_clusters * in_channels,
            hidden_channels=hidden_channels,
            dropout_ratio=dropout_ratio,
            gating=gating,
            loss_cls=loss_cls,
            **kwargs)
        self.num_clusters = num_clusters
        self.assign = nn.Linear(in_channels, num_clusters, bias=False)
        self.bn_assign = nn.BatchNorm1d(num_clusters)
        # The scale of Miech et al.'s initialisation: 1 / sqrt(D).
        self.centers = nn.Parameter(
            torch.randn(num_clusters, in_channels) / in_channels**0.5)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a feature sequence into the normalised VLAD descriptor.

        Args:
            x (Tensor): Shape (N, T, in_channels).

        Returns:
            Tensor: Shape (N, num_clusters * in_channels).
        """
        n, t, _ = x.shape
        # BatchNorm over all frames of the batch: [N * T, K] -> [N, T, K]
        logits = self.bn_assign(self.assign(x.flatten(0, 1)))
        assign = logits.reshape(n, t, -1).softmax(dim=-1)
        vlad = vlad_aggregate(x, assign, self.centers)  # [N, K, D]
        vlad = F.normalize(vlad, dim=2)
        return F.normalize(vlad.flatten(1), dim=1)
