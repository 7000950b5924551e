from .hooks import (
    FiniteLossHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
)

__all__ = [
    'FiniteLossHook', 'PretrainedStudentHook', 'ResumableRandomnessHook'
]
