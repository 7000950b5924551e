from .dive_property_accuracy import DivePropertyAccuracy
from .spearman_correlation import SpearmanCorrelation

__all__ = ['DivePropertyAccuracy', 'SpearmanCorrelation']
