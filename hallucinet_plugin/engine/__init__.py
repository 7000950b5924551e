from .distributed import setup_cpu_distributed
from .hooks import (
    FiniteLossHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
)

__all__ = [
    'FiniteLossHook', 'PretrainedStudentHook', 'ResumableRandomnessHook',
    'setup_cpu_distributed'
]
