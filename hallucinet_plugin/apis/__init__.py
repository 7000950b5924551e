from .feature_bank import (
    FeatureBank,
    FeatureBankWriter,
    bank_settings,
    collect_videos,
    extract_teacher_features,
)
from .flow import (
    BadVideoError,
    compute_tvl1_flow,
    dequantize_flow,
    extract_flow,
    extract_video_flow,
    quantize_flow,
)
from .hara_checkpoint import (
    convert_hara_checkpoint,
    load_resnext3d_state_dict,
    read_hara_checkpoint,
)
from .runner import test, train
from .split_lists import (
    convert_split_lists,
    parse_hmdb51_split,
    parse_ucf101_split,
    read_class_index,
)

__all__ = [
    'FeatureBank', 'FeatureBankWriter', 'bank_settings', 'collect_videos',
    'extract_teacher_features',
    'BadVideoError', 'compute_tvl1_flow', 'dequantize_flow', 'extract_flow',
    'extract_video_flow', 'quantize_flow', 'convert_hara_checkpoint',
    'load_resnext3d_state_dict', 'read_hara_checkpoint', 'train', 'test',
    'convert_split_lists',
    'parse_hmdb51_split', 'parse_ucf101_split', 'read_class_index'
]
