"""MoNet's two streams: :class:`HalluciNet` with a second classifier on the
hallucinated features and late fusion of both streams' probabilities."""
from typing import List, Optional, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.logging import print_log

from ...utils.checkpoint import load_checkpoint_into
from ...utils.typing_utils import ConfigType
from .channels import check_stream_channels
from .hallucinet import HalluciNet


@MODELS.register_module()
class LateFusionHalluciNet(HalluciNet):
    """Two streams (MoNet, Tang et al., IJCAI 2019): ``cls_head``
    classifies the appearance features, ``hallu_cls_head`` the
    hallucinated ones, and their class probabilities are averaged with
    ``late_fusion_weights``.

    The hallucination is an auxiliary task of the appearance stream
    (``fusion='none'`` of :class:`HalluciNet`, whose other arguments it
    takes) with a classifier of its own.

    Args:
        hallu_cls_head (dict): The hallucinated stream's classifier. Its
            losses are logged with a ``_hallu`` suffix (``loss_cls_hallu``).
        late_fusion_weights (tuple[float]): Weights of the appearance and
            the hallucinated stream's probabilities at inference.
        appearance_ckpt (str, optional): A trained appearance model's
            checkpoint (e.g. the appearance-only baseline, same backbone and
            ``cls_head``) whose ``backbone.`` and ``cls_head.`` weights are
            loaded when training starts (:meth:`init_weights`, also before
            a resume replaces them); testing reads them from the model's
            own checkpoint.
        freeze_appearance (bool): Keep the appearance stream (backbone and
            ``cls_head``) fixed: no gradients, BN and dropout in eval mode.
            With ``appearance_ckpt`` this is MoNet's setting, where the
            hallucination is learned on fixed, trained appearance features.
        **kwargs: :class:`HalluciNet`'s arguments, a ``hallu_head``
            required, no ``fusion``.
    """
    # Two streams sum the hallucination loss first.
    hallu_loss_first = True

    def __init__(self,
                 hallu_cls_head: ConfigType,
                 late_fusion_weights: Tuple[float, float] = (1.0, 1.0),
                 appearance_ckpt: Optional[str] = None,
                 freeze_appearance: bool = False,
                 **kwargs) -> None:
        if kwargs.get('fusion', 'none') != 'none':
            raise ValueError(
                'LateFusionHalluciNet fuses its streams late: no fusion '
                f"argument (got fusion={kwargs['fusion']!r})")
        if kwargs.get('hallu_head') is None:
            raise ValueError('LateFusionHalluciNet needs a hallu_head')
        if hallu_cls_head is None:
            raise ValueError('LateFusionHalluciNet needs a hallu_cls_head '
                             "(for one stream: type='HalluciNet')")
        self._hallu_cls_head_cfg = hallu_cls_head
        super().__init__(fusion='none', **kwargs)
        del self._hallu_cls_head_cfg
        check_stream_channels(self)
        self.late_fusion_weights = tuple(late_fusion_weights)
        self.appearance_ckpt = appearance_ckpt
        self.freeze_appearance = freeze_appearance
        if freeze_appearance:
            for param in self._appearance_params():
                param.requires_grad = False

    def build_streams(self) -> None:
        """The hallucinated stream's classifier."""
        self.hallu_cls_head = MODELS.build(self._hallu_cls_head_cfg)

    # ----------------------------------------------------------- building
    def _appearance_params(self):
        for module in (self.backbone, self.cls_head):
            yield from module.parameters()

    def load_appearance(self, filename: str) -> None:
        """Load the appearance stream (``backbone.``, ``cls_head.``) from
        a trained appearance model's checkpoint (``appearance_ckpt``)."""
        load_checkpoint_into(
            self,
            filename,
            prefixes=('backbone.', 'cls_head.'),
            key_name='appearance_ckpt',
            what="the appearance model's checkpoint",
            allow_unexpected=True)
        print_log(
            'loaded the appearance stream (backbone, cls_head) from '
            f'{filename}',
            logger='current')

    def init_weights(self) -> None:
        """Initialise, then load ``appearance_ckpt`` if given (training
        only: the Runner calls this before ``load_from``/resume)."""
        super().init_weights()
        if self.appearance_ckpt is not None:
            self.load_appearance(self.appearance_ckpt)

    def train(self, mode: bool = True) -> 'LateFusionHalluciNet':
        """Set train mode, keeping the appearance stream in eval mode when
        ``freeze_appearance``."""
        super().train(mode)
        if self.freeze_appearance:
            self.backbone.eval()
            self.cls_head.eval()
        return self

    # ------------------------------------------------------------ forward
    def fuse(self, feats: torch.Tensor,
             hallu: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The two streams, appearance ``(N * S, F * C, 1, 1)`` and
        hallucinated ``(N * S, D, 1, 1)``."""
        return feats[..., None, None], hallu[..., None, None]

    def forward_head(self, x: Tuple[torch.Tensor, torch.Tensor],
                     **kwargs) -> torch.Tensor:
        """Weighted sum of both streams' class probabilities.

        Args:
            x (tuple[Tensor]): The streams (:meth:`fuse`).

        Returns:
            Tensor: ``(N * V', num_classes)`` probabilities, one row per view
            that the heads' segmental consensus keeps apart.
        """
        weights = self.late_fusion_weights
        scores = [
            head(feats, **kwargs).softmax(dim=-1)
            for _, head, feats in self.classifier_streams(x)
        ]
        return (weights[0] * scores[0] + weights[1] * scores[1]) / sum(weights)

    def average_views(self, scores: torch.Tensor,
                      num_views: int) -> torch.Tensor:
        """The views' mean of :meth:`forward_head`'s probabilities."""
        # [N * V, num_classes] -> [N, num_classes]
        return scores.reshape(-1, num_views, scores.shape[-1]).mean(1)

    def classifier_streams(self, x) -> List[Tuple]:
        """Both classifiers, the hallucinated one's losses with a
        ``_hallu`` suffix."""
        return [('', self.cls_head, x[0]),
                ('_hallu', self.hallu_cls_head, x[1])]
