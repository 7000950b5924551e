from .benchmark import (
    benchmark,
    count_flops,
    count_parameters,
    measure_latency,
    measure_latency_ratio,
    measure_peak_memory,
    summarize_cost,
)
from .dive_demo_dataset import DIVE_PROPERTIES, generate_dive_demo_dataset
from .export import (
    DeployModel,
    TeacherDeployModel,
    build_deploy_model,
    build_student,
    export_onnx,
    verify_export,
    verify_onnx,
)
from .feature_bank import (
    FeatureBank,
    FeatureBankWriter,
    bank_settings,
    collect_videos,
    extract_teacher_features,
    use_teacher_bank,
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
from .inference import Predictor, inference, load_frames, load_label_map
from .runner import test, train
from .split_lists import (
    convert_split_lists,
    parse_hmdb51_split,
    parse_ucf101_split,
    read_class_index,
)
from .unlabelled import unlabelled_dataset, use_unlabelled

__all__ = [
    'DIVE_PROPERTIES', 'generate_dive_demo_dataset',
    'benchmark', 'count_flops', 'count_parameters', 'measure_latency',
    'measure_latency_ratio', 'measure_peak_memory', 'summarize_cost',
    'DeployModel', 'TeacherDeployModel', 'build_deploy_model',
    'build_student', 'export_onnx', 'verify_export', 'verify_onnx',
    'Predictor', 'inference', 'load_frames', 'load_label_map',
    'FeatureBank', 'FeatureBankWriter', 'bank_settings', 'collect_videos',
    'extract_teacher_features', 'use_teacher_bank', 'use_unlabelled',
    'unlabelled_dataset',
    'BadVideoError', 'compute_tvl1_flow', 'dequantize_flow', 'extract_flow',
    'extract_video_flow', 'quantize_flow', 'convert_hara_checkpoint',
    'load_resnext3d_state_dict', 'read_hara_checkpoint', 'train', 'test',
    'convert_split_lists',
    'parse_hmdb51_split', 'parse_ucf101_split', 'read_class_index'
]
