from .checkpoint import (
    register_safe_checkpoint_globals,
    sanitize_checkpoint,
    unsafe_globals,
)
from .compat import (
    get_gt_label,
    get_pred_score,
    set_gt_label,
    set_pred_label,
    set_pred_score,
)
from .seed_statistics import difference_ci, seed_summary

__all__ = [
    'register_safe_checkpoint_globals', 'sanitize_checkpoint',
    'unsafe_globals', 'get_gt_label', 'set_gt_label', 'get_pred_score',
    'set_pred_score', 'set_pred_label', 'seed_summary', 'difference_ci'
]
