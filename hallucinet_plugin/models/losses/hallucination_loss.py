import torch
import torch.nn as nn
from mmaction.registry import MODELS


@MODELS.register_module()
class HallucinationLoss(nn.Module):
    """HalluciNet's hallucination loss (Parmar & Morris, Signals 2021).

    ``loss_weight * mean((sigmoid(s_feature) - sigmoid(t_feature)) ** 2)``,
    the mean over the batch and the feature dimensions. The sigmoid bounds
    both sides, so the teacher's unbounded pooled activations neither
    dominate nor explode the regression.

    Args:
        loss_weight (float): The balance factor lambda (50 in the paper's
            recognition experiments, 1 for dynamic scenes).
        use_sigmoid (bool): Apply the sigmoid to both sides. ``False`` gives
            a plain mean squared error, for ablations.
    """

    def __init__(self, loss_weight: float = 1.0, use_sigmoid: bool = True):
        super().__init__()
        self.loss_weight = loss_weight
        self.use_sigmoid = use_sigmoid

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            s_feature (Tensor): Hallucinated representation, shape (N, D) or
                any shape matching ``t_feature``.
            t_feature (Tensor): Teacher representation, same shape.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if s_feature.shape != t_feature.shape:
            raise ValueError(
                'HallucinationLoss: student shape '
                f'{tuple(s_feature.shape)} != teacher shape '
                f'{tuple(t_feature.shape)}')
        t_feature = t_feature.to(s_feature.dtype)
        if self.use_sigmoid:
            s_feature, t_feature = s_feature.sigmoid(), t_feature.sigmoid()
        return self.loss_weight * (s_feature - t_feature).pow(2).mean()
