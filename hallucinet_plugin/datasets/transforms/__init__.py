from .hallu_sample_frames import HalluSampleFrames
from .hallu_sparse_sample_frames import HalluSparseSampleFrames
from .hallu_split_views import HalluSplitViews
from .load_teacher_features import LoadTeacherFeatures

__all__ = [
    'HalluSampleFrames', 'HalluSparseSampleFrames', 'HalluSplitViews',
    'LoadTeacherFeatures'
]
