from .hallu_sample_frames import HalluSampleFrames
from .hallu_split_views import HalluSplitViews

__all__ = ['HalluSampleFrames', 'HalluSplitViews']
