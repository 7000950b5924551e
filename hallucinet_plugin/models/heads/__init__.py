from .base_hallucination_head import BaseHallucinationHead
from .dive_lstm_head import DiveLSTMHead
from .hallucination_head import HallucinationHead
from .monet_head import MoNetHead

__all__ = [
    'BaseHallucinationHead', 'DiveLSTMHead', 'HallucinationHead', 'MoNetHead'
]
