from .feature_sequence_data_preprocessor import FeatureSequenceDataPreprocessor
from .hallucinet_data_preprocessor import HalluciNetDataPreprocessor

__all__ = ['FeatureSequenceDataPreprocessor', 'HalluciNetDataPreprocessor']
