from .finite_loss_hook import FiniteLossHook
from .pretrained_student_hook import PretrainedStudentHook
from .resumable_randomness_hook import ResumableRandomnessHook

__all__ = [
    'FiniteLossHook', 'PretrainedStudentHook', 'ResumableRandomnessHook'
]
