from .feature_sequence_recognizer import FeatureSequenceRecognizer
from .hallucinet import HalluciNet
from .late_fusion_hallucinet import LateFusionHalluciNet

__all__ = ['FeatureSequenceRecognizer', 'HalluciNet', 'LateFusionHalluciNet']
