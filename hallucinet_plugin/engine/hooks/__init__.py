from .finite_loss_hook import FiniteLossHook
from .pretrained_student_hook import (
    PretrainedStudentHook,
    load_pretrained_parts,
)
from .resumable_randomness_hook import ResumableRandomnessHook

__all__ = [
    'FiniteLossHook', 'PretrainedStudentHook', 'ResumableRandomnessHook',
    'load_pretrained_parts'
]
