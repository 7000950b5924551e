from .distributed import setup_cpu_distributed
from .hallucination import apply_hallucination, resolve_config_path
from .hooks import (
    FiniteLossHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
    WeightsOnlyCheckpointHook,
)
from .runner import HalluciNetRunner

__all__ = [
    'FiniteLossHook', 'HalluciNetRunner', 'PretrainedStudentHook',
    'ResumableRandomnessHook', 'WeightsOnlyCheckpointHook',
    'apply_hallucination', 'resolve_config_path', 'setup_cpu_distributed'
]
