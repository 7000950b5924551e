from .hallu_sample_frames import HalluSampleFrames
from .hallu_sparse_sample_frames import HalluSparseSampleFrames
from .hallu_split_views import HalluSplitViews

__all__ = ['HalluSampleFrames', 'HalluSparseSampleFrames', 'HalluSplitViews']
