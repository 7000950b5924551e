"""Converters: optical flow from videos, official split lists to
annotation files, Hara et al.'s 3D-ResNeXt checkpoints."""
from .flow import (
    BadVideoError,
    compute_tvl1_flow,
    dequantize_flow,
    extract_video_flow,
    quantize_flow,
)
from .flow_extraction import extract_flow
from .hara_checkpoint import (
    convert_hara_checkpoint,
    load_resnext3d_state_dict,
    read_hara_checkpoint,
)
from .split_lists import (
    convert_split_lists,
    parse_hmdb51_split,
    parse_ucf101_split,
    read_class_index,
)

__all__ = [
    'BadVideoError', 'compute_tvl1_flow', 'dequantize_flow', 'extract_flow',
    'extract_video_flow', 'quantize_flow', 'convert_hara_checkpoint',
    'load_resnext3d_state_dict', 'read_hara_checkpoint',
    'convert_split_lists', 'parse_hmdb51_split', 'parse_ucf101_split',
    'read_class_index'
]
