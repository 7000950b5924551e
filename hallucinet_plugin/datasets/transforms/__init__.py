from .hallu_decord_init import HalluDecordInit, VideoReadError
from .hallu_sample_frames import HalluSampleFrames
from .hallu_sparse_sample_frames import HalluSparseSampleFrames
from .hallu_split_views import HalluSplitViews
from .load_feature_sequence import LoadFeatureSequence
from .load_flow_clips import LoadFlowClips
from .load_teacher_features import LoadTeacherFeatures
from .sample_feature_sequence import SampleFeatureSequence

__all__ = [
    'HalluDecordInit', 'VideoReadError', 'HalluSampleFrames',
    'HalluSparseSampleFrames', 'HalluSplitViews', 'LoadFeatureSequence',
    'LoadFlowClips', 'LoadTeacherFeatures', 'SampleFeatureSequence'
]
