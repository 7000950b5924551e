from .hallucinet_data_preprocessor import HalluciNetDataPreprocessor

__all__ = ['HalluciNetDataPreprocessor']
