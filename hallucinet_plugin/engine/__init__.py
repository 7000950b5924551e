from .distributed import setup_cpu_distributed
from .hooks import (
    FiniteLossHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
    WeightsOnlyCheckpointHook,
)

__all__ = [
    'FiniteLossHook', 'PretrainedStudentHook', 'ResumableRandomnessHook',
    'WeightsOnlyCheckpointHook', 'setup_cpu_distributed'
]
