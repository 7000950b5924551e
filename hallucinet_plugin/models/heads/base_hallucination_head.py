from typing import Dict

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule

from ...utils.typing_utils import OptConfigType


class BaseHallucinationHead(BaseModule):
    """Common part of the heads that hallucinate a teacher representation.

    A hallucination head maps per-segment student features to the teacher's
    representation and owns the loss that compares the two. Subclasses
    implement :meth:`forward`.

    Args:
        in_channels (int): Student feature size per segment (all student
            frames of the segment concatenated).
        out_channels (int): Teacher representation size.
        loss_hallu (dict): Config of the loss; it returns a scalar, logged as
            ``loss_hallu``, or a dict of ``loss_*`` terms.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_hallu: OptConfigType = dict(
                     type='HallucinationLoss', loss_weight=50.0),
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.loss_hallu = MODELS.build(loss_hallu)

    def forward(self, x: torch.Tensor, num_segs: int = 1) -> torch.Tensor:
        """Hallucinate the teacher representation.

        Args:
            x (Tensor): Student features, shape (N * num_segs, in_channels).
            num_segs (int): Segments per video; sequence heads use it to
                recover the time axis.

        Returns:
            Tensor: Shape (N * num_segs, out_channels).
        """
        raise NotImplementedError

    def loss(self,
             hallu: torch.Tensor,
             target: torch.Tensor,
             num_segs: int = 1) -> Dict[str, torch.Tensor]:
        """Compare hallucinated and teacher representations.

        Args:
            hallu (Tensor): Shape (N * num_segs, out_channels).
            target (Tensor): Teacher representation, same shape.
            num_segs (int): Segments per video.

        Returns:
            dict[str, Tensor]: ``loss_hallu`` or the loss's own terms.
        """
        if target.shape != hallu.shape:
            raise ValueError(
                f'{type(self).__name__}: the teacher target has shape '
                f'{tuple(target.shape)} but the head hallucinates '
                f'{tuple(hallu.shape)}; check hallu_head.out_channels '
                f'({self.out_channels}) against the teacher dimension.')
        loss = self.loss_hallu(hallu, target)
        if isinstance(loss, dict):
            return loss
        return dict(loss_hallu=loss)
