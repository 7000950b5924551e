from .hallucination_loss import HallucinationLoss
from .monet_loss import MoNetLoss

__all__ = ['HallucinationLoss', 'MoNetLoss']
