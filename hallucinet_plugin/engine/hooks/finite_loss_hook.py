import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_gather_object, all_reduce, get_dist_info
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is not finite.

    mmengine logs ``loss: nan`` and keeps stepping: the weights turn to NaN
    and every later checkpoint is lost work. After each training iteration
    this hook checks every loss term the model returned (the log keys
    containing ``loss``, as mmengine sums them) and raises
    ``FloatingPointError`` naming the iteration, the non-finite terms with
    their values and the videos of the batch (``filename`` in the samples'
    metainfo, which :class:`~hallucinet_plugin.datasets.HalluVideoDataset`
    sets).

    It runs after the optimizer step of that iteration (hooks cannot reach
    between backward and step) but before the logger and the checkpoint
    hook: nothing of that iteration is saved, the last checkpoint on disk
    predates it and ``tools/train.py --resume`` continues from there. In
    distributed training every rank learns of a non-finite loss on any
    rank (a flag is all-reduced each iteration, the reports gathered only
    on failure), so all ranks stop at the same iteration with the same
    message instead of one rank stopping and the others waiting in the next
    gradient all-reduce.
    """

    # Before LoggerHook (BELOW_NORMAL) and CheckpointHook (VERY_LOW).
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[Dict] = None) -> None:
        bad = _non_finite_terms(outputs or {})
        _, world_size = get_dist_info()
        if world_size > 1:
            device = next(
                (v.device for v in (outputs or {}).values()
                 if isinstance(v, torch.Tensor)), torch.device('cpu'))
            flag = torch.tensor([float(bool(bad))], device=device)
            all_reduce(flag)
            if flag.item() == 0:
                return
            reports = all_gather_object((bad, _batch_files(data_batch)))
        elif not bad:
            return
        else:
            reports = [(bad, _batch_files(data_batch))]
        raise FloatingPointError(_message(runner, batch_idx, reports))


def _non_finite_terms(outputs: Dict) -> Dict[str, float]:
    """The loss terms of a log dict that are NaN or infinite."""
    bad = {}
    for key, value in outputs.items():
        if 'loss' not in key:
            continue
        if isinstance(value, torch.Tensor):
            finite = bool(torch.isfinite(value).all())
            value = value.detach().float().mean().item()
        else:
            finite = math.isfinite(float(value))
        if not finite:
            bad[key] = float(value)
    return bad


def _batch_files(data_batch: DATA_BATCH) -> Optional[List[str]]:
    samples = data_batch.get('data_samples') if isinstance(
        data_batch, dict) else None
    if not samples:
        return None
    files = [
        getattr(sample, 'metainfo', {}).get('filename') for sample in samples
    ]
    return None if any(f is None for f in files) else files


def _message(runner, batch_idx: int, reports: Sequence) -> str:
    where = f'iteration {runner.iter + 1}'
    if isinstance(runner.train_loop, EpochBasedTrainLoop):
        where += (f' (epoch {runner.epoch + 1}, batch {batch_idx + 1} of '
                  f'{len(runner.train_dataloader)})')
    lines = []
    for rank, (bad, files) in enumerate(reports):
        if not bad:
            continue
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        batch = ', '.join(files) if files is not None else (
            'unknown (train with HalluVideoDataset, or add "filename" to '
            "PackActionInputs' meta_keys)")
        who = f'rank {rank}: ' if len(reports) > 1 else ''
        lines.append(f'{who}{terms}; batch files: {batch}')
    return (f'non-finite loss at {where}:\n  ' + '\n  '.join(lines) +
            '\nTraining stopped before this iteration was logged or '
            'checkpointed; the weights in memory took its update, the last '
            'checkpoint on disk did not. Fix the cause (a corrupt sample or '
            'feature-bank entry, too high a learning rate) and continue '
            'with tools/train.py --resume.')
