"""One way to read and write labels and scores across mmaction2 1.1 and 1.2.

mmaction2 1.1 stores labels as ``LabelData`` (``set_gt_labels`` /
``gt_labels.item``, ``pred_scores.item``); 1.2 stores plain tensors
(``set_gt_label`` / ``gt_label``, ``pred_score``). The plugin never touches
either spelling directly.
"""
import torch
from mmaction.structures import ActionDataSample

MMACTION_LABEL_DATA = hasattr(ActionDataSample, 'set_gt_labels')


def set_gt_label(sample: ActionDataSample, label) -> ActionDataSample:
    """Set the ground-truth label (int, list or tensor) of ``sample``."""
    if MMACTION_LABEL_DATA:
        return sample.set_gt_labels(label)
    return sample.set_gt_label(label)


def get_gt_label(sample: ActionDataSample) -> torch.Tensor:
    """The ground-truth label tensor of ``sample``."""
    if MMACTION_LABEL_DATA:
        return sample.gt_labels.item
    return sample.gt_label


def set_pred_score(sample: ActionDataSample,
                   score: torch.Tensor) -> ActionDataSample:
    """Set the class scores, shape ``(num_classes, )``, of ``sample``."""
    return sample.set_pred_score(score)


def get_pred_score(sample: ActionDataSample) -> torch.Tensor:
    """The class scores, shape ``(num_classes, )``, of ``sample``."""
    if MMACTION_LABEL_DATA:
        return sample.pred_scores.item
    return sample.pred_score


def set_pred_label(sample: ActionDataSample, label) -> ActionDataSample:
    """Set the predicted label of ``sample``."""
    return sample.set_pred_label(label)
