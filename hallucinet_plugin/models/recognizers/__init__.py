from .feature_sequence_recognizer import FeatureSequenceRecognizer
from .hallucinet import HalluciNet

__all__ = ['FeatureSequenceRecognizer', 'HalluciNet']
