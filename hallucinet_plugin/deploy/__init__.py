"""Deployment: the student-only deploy model, its ONNX export and INT8
quantisation, inference, and the cost primitives (parameters, FLOPs,
latency, memory) that ``tools/benchmark.py`` builds on."""
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
from .spec import student_input_spec, teacher_input_spec

__all__ = [
    'DeployModel', 'Predictor', 'TeacherDeployModel', 'build_deploy_model',
    'build_student', 'count_flops', 'count_parameters', 'export_onnx',
    'inference', 'load_frames', 'load_label_map', 'measure_latency',
    'measure_latency_ratio', 'measure_peak_memory', 'student_input_spec',
    'summarize_cost', 'teacher_input_spec', 'verify_export', 'verify_onnx'
]
