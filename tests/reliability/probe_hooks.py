"""Hooks the reliability tests load into ``tools/train.py`` subprocesses
(through ``custom_imports``, with this folder on ``PYTHONPATH``).

They only observe: no random draws, no change to the model, the data or
the schedule, so a run with them trains exactly as one without; except
``PoisonTargetsHook``, which stands in for a corrupt teacher target.
"""
import json
import os
import os.path as osp
import time

from mmaction.registry import HOOKS
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from torch.nn.parallel import DistributedDataParallel


def _teacher_sum(module) -> float:
    teacher = getattr(module, 'teacher', None)
    if teacher is None:
        return 0.0
    return float(sum(v.double().sum() for v in teacher.state_dict().values()))


@HOOKS.register_module()
class PoisonTargetsHook(Hook):
    """Set the teacher targets of one video's samples to NaN before the
    step: a corrupt target that reaches the loss (the feature store
    refuses non-finite rows itself, so a store cannot be the source)."""

    priority = 'HIGHEST'

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        feats = data_batch['inputs']['teacher_feats']
        for i, sample in enumerate(data_batch['data_samples']):
            if osp.basename(sample.metainfo['filename']) == self.filename:
                feats[i].fill_(float('nan'))


@HOOKS.register_module()
class RecordRunHook(Hook):
    """Write ``rank<r>.json`` to ``out_dir``: how DDP wrapped the model,
    every iteration's loss terms, batch files and teacher targets from a
    feature bank, and a checksum of the teacher before and after."""

    priority = 'LOWEST'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.record = dict(iters=[])

    def before_train(self, runner) -> None:
        model = runner.model
        rank, world_size = get_dist_info()
        module = getattr(model, 'module', model)
        named = dict(module.named_parameters())
        self.record.update(
            rank=rank,
            world_size=world_size,
            wrapper=type(model).__name__,
            trainable=sorted(n for n, p in named.items() if p.requires_grad),
            teacher=sorted(n for n in named if n.startswith('teacher.')),
            teacher_sum_before=_teacher_sum(module))
        if isinstance(model, DistributedDataParallel):
            # The parameters DDP's reducer all-reduces gradients of.
            params, _ = model._build_params_for_reducer()
            ids = {id(p) for p in params}
            self.record.update(
                reducer=sorted(n for n, p in named.items() if id(p) in ids),
                find_unused_parameters=model.find_unused_parameters)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        item = dict(
            iter=runner.iter + 1,
            losses={
                k: float(v)
                for k, v in (outputs or {}).items() if 'loss' in k
            },
            files=[
                s.metainfo.get('filename') for s in data_batch['data_samples']
            ])
        feats = data_batch['inputs'].get('teacher_feats') if isinstance(
            data_batch['inputs'], dict) else None
        if feats is not None:
            item['teacher_feats'] = [f.float().tolist() for f in feats]
        self.record['iters'].append(item)

    def after_train(self, runner) -> None:
        module = getattr(runner.model, 'module', runner.model)
        self.record['teacher_sum_after'] = _teacher_sum(module)
        os.makedirs(self.out_dir, exist_ok=True)
        with open(osp.join(self.out_dir, f'rank{self.record["rank"]}.json'),
                  'w') as f:
            json.dump(self.record, f)


@HOOKS.register_module()
class PauseAtIterHook(Hook):
    """After iteration ``at_iter`` (1-based, after its checkpoint if any)
    write ``marker`` and wait, so that the test can kill the process at a
    known point."""

    priority = 'LOWEST'

    def __init__(self, at_iter: int, marker: str) -> None:
        self.at_iter = at_iter
        self.marker = marker

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 != self.at_iter:
            return
        with open(self.marker, 'w') as f:
            f.write(str(runner.iter + 1))
        while True:
            time.sleep(1)

