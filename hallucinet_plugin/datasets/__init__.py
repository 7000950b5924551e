from .hallu_video_dataset import HalluVideoDataset
from .mtl_aqa_dataset import MTLAQADataset
from .samplers import MixedSourceSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['HalluVideoDataset', 'MTLAQADataset', 'MixedSourceSampler']
