from .finite_loss_hook import FiniteLossHook
from .hallucination_hook import HallucinationHook
from .pretrained_student_hook import (
    PretrainedStudentHook,
    load_pretrained_parts,
)
from .resumable_randomness_hook import ResumableRandomnessHook
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = [
    'FiniteLossHook', 'HallucinationHook', 'PretrainedStudentHook',
    'ResumableRandomnessHook', 'WeightsOnlyCheckpointHook',
    'load_pretrained_parts'
]
