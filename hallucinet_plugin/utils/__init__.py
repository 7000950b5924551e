from .checkpoint import (
    load_checkpoint_into,
    load_state_dict_from,
    prefix_mapping,
    read_checkpoint,
    state_dict_of,
)
from .checkpoint_plain import from_plain, sanitize_checkpoint, to_plain
from .checkpoint_sources import use_safe_checkpoint_loaders
from .compat import (
    get_gt_label,
    get_pred_score,
    set_gt_label,
    set_pred_label,
    set_pred_score,
)
from .seed_statistics import difference_ci, seed_summary

__all__ = [
    'from_plain', 'load_checkpoint_into', 'load_state_dict_from',
    'prefix_mapping', 'read_checkpoint', 'sanitize_checkpoint',
    'state_dict_of', 'to_plain',
    'get_gt_label', 'set_gt_label', 'get_pred_score', 'set_pred_score',
    'set_pred_label', 'seed_summary', 'difference_ci',
    'use_safe_checkpoint_loaders'
]
