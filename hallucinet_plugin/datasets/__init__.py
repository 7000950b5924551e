from .feature_sequence_dataset import FeatureSequenceDataset
from .hallu_video_dataset import HalluVideoDataset
from .mtl_aqa_dataset import MTLAQADataset
from .samplers import MixedSourceSampler
from .transforms import *  # noqa: F401,F403
from .unlabelled import unlabelled_dataset, use_unlabelled

__all__ = [
    'FeatureSequenceDataset', 'HalluVideoDataset', 'MTLAQADataset',
    'MixedSourceSampler', 'unlabelled_dataset', 'use_unlabelled'
]
