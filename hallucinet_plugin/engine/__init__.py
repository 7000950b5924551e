from .distributed import setup_cpu_distributed
from .hallucination import apply_hallucination
from .hooks import (
    FiniteLossHook,
    HallucinationHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
    WeightsOnlyCheckpointHook,
)
from .runner import HalluciNetRunner

__all__ = [
    'FiniteLossHook', 'HalluciNetRunner', 'HallucinationHook',
    'PretrainedStudentHook', 'ResumableRandomnessHook',
    'WeightsOnlyCheckpointHook', 'apply_hallucination',
    'setup_cpu_distributed'
]
