from .base_hallucination_head import BaseHallucinationHead
from .hallucination_head import HallucinationHead
from .monet_head import MoNetHead

__all__ = ['BaseHallucinationHead', 'HallucinationHead', 'MoNetHead']
