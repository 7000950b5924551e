from .base_hallucination_head import BaseHallucinationHead
from .base_vlad_head import BaseVLADHead
from .dive_lstm_head import DiveLSTMHead
from .hallucination_head import HallucinationHead
from .monet_head import MoNetHead
from .netvlad_head import NetVLADHead
from .nextvlad_head import NeXtVLADHead

__all__ = [
    'BaseHallucinationHead', 'BaseVLADHead', 'DiveLSTMHead',
    'HallucinationHead', 'MoNetHead', 'NeXtVLADHead', 'NetVLADHead'
]
