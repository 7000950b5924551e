"""Deployment: the student-only deploy model, its ONNX export, inference
and cost measurement."""
from .bank_benchmark import (
    bank_benchmark,
    extraction_speed,
    format_bank_report,
    training_speed,
)
from .benchmark import benchmark, plan_jobs, reference_cost
from .benchmark_report import format_report, write_report
from .cost import (
    count_flops,
    count_parameters,
    measure_latency,
    measure_latency_ratio,
    measure_peak_memory,
    summarize_cost,
)
from .deploy_model import (
    DeployModel,
    TeacherDeployModel,
    build_deploy_model,
    build_student,
)
from .frames import load_frames
from .inference import Predictor, inference, load_label_map
from .onnx_export import export_onnx, verify_export, verify_onnx
from .presets import PRESETS, preset_configs
from .spec import student_input_spec, teacher_input_spec

__all__ = [
    'bank_benchmark', 'format_bank_report', 'DeployModel', 'PRESETS',
    'Predictor', 'TeacherDeployModel', 'benchmark', 'reference_cost',
    'build_deploy_model', 'build_student', 'count_flops',
    'count_parameters', 'export_onnx', 'extraction_speed', 'format_report',
    'inference', 'load_frames', 'load_label_map', 'measure_latency',
    'measure_latency_ratio', 'measure_peak_memory', 'plan_jobs',
    'preset_configs', 'student_input_spec', 'summarize_cost',
    'teacher_input_spec', 'training_speed', 'verify_export', 'verify_onnx',
    'write_report'
]
