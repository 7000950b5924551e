"""Partly labelled batches (``HalluVideoDataset(unlabelled=True)``
samples next to labelled ones): which rows have a label, and a head's loss
on those rows only."""
from typing import Dict, List

import torch
import torch.nn as nn
from mmaction.utils import SampleList


def labelled_samples(data_samples: SampleList) -> List[bool]:
    """Which samples have a label: all but those whose metainfo says
    ``labelled=False`` (``HalluVideoDataset(unlabelled=True)``)."""
    return [
        sample.metainfo.get('labelled', True) is not False
        for sample in data_samples
    ]


def unlabelled_hallu_loss(hallu_head: nn.Module, hallu: torch.Tensor,
                          target: torch.Tensor, num_segs: int,
                          data_samples: SampleList) -> Dict:
    """The hallucination loss of the unlabelled samples alone, for the
    log: ``loss_hallu`` -> ``hallu_unlabelled`` (no ``loss`` in the
    name, so it is not added to the total a second time)."""
    labelled = labelled_samples(data_samples)
    if all(labelled):
        return {}
    # [N * S] rows, S per sample, samples in order.
    rows = torch.tensor(labelled, device=hallu.device).logical_not()
    rows = rows.repeat_interleave(len(hallu) // len(data_samples))
    with torch.no_grad():
        part = hallu_head.loss(hallu[rows], target[rows], num_segs)
    return {
        f'{key[len("loss_"):] if key.startswith("loss_") else key}'
        '_unlabelled': value.detach()
        for key, value in part.items()
    }


def labelled_head_loss(head: nn.Module, x: torch.Tensor,
                        data_samples: SampleList, labelled: List[bool],
                        **kwargs) -> Dict:
    """``head.loss`` on the labelled samples' rows of ``x`` only.

    Unlabelled samples get no gradient from the classification loss,
    and labelled ones exactly that of a batch of labelled samples
    alone. A batch without a labelled sample gives a zero
    ``loss_cls`` that still reaches every parameter of the head
    (DDP expects a gradient for each).
    """
    if all(labelled):
        return head.loss(x, data_samples, **kwargs)
    keep = [i for i, flag in enumerate(labelled) if flag]
    if not keep:
        out = head(x, **kwargs)
        return dict(loss_cls=sum(t.sum() for t in _tensors(out)) * 0.)
    # [N * S, C, ...] -> [N, S, C, ...] -> the labelled samples' rows.
    rows = x.reshape(len(data_samples), -1, *x.shape[1:])[keep]
    return head.loss(
        rows.flatten(0, 1), [data_samples[i] for i in keep], **kwargs)


def _tensors(out) -> List[torch.Tensor]:
    """The tensors of a head's output (a tensor, or tuples and dicts of
    them, e.g. ``DiveLSTMHead``'s ``(logits, score)``)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []
