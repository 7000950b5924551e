from .distributed import setup_cpu_distributed
from .hallucination import apply_hallucination
from .hooks import (
    FiniteLossHook,
    HallucinationHook,
    PretrainedStudentHook,
    ResumableRandomnessHook,
    WeightsOnlyCheckpointHook,
)
from .optimizers import HalluciNetOptimWrapperConstructor
from .runner import HalluciNetRunner

__all__ = [
    'FiniteLossHook', 'HalluciNetOptimWrapperConstructor',
    'HalluciNetRunner', 'HallucinationHook',
    'PretrainedStudentHook', 'ResumableRandomnessHook',
    'WeightsOnlyCheckpointHook', 'apply_hallucination',
    'setup_cpu_distributed'
]
