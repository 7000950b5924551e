from .dive_property_accuracy import DivePropertyAccuracy
from .spearman_correlation import SpearmanCorrelation
from .youtube8m_metric import YouTube8MMetric

__all__ = ['DivePropertyAccuracy', 'SpearmanCorrelation', 'YouTube8MMetric']
