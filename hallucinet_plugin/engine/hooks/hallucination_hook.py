"""The data side of ``model.hallucination`` for Runners built from the raw
config (mmaction2 1.1.0's own ``tools/train.py``)."""
import copy
import logging
from typing import List

from mmaction.registry import HOOKS
from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, IterBasedTrainLoop

from ...utils.checkpoint_sources import use_safe_checkpoint_loaders
from ...utils.config import pipeline_datasets
from ..hallucination import apply_hallucination
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook


def _leaf_datasets(dataset) -> List:
    """The datasets that hold pipelines, in config order (ConcatDataset's
    ``datasets``, RepeatDataset's ``dataset`` ...)."""
    if hasattr(dataset, 'datasets'):
        return [d for sub in dataset.datasets for d in _leaf_datasets(sub)]
    if hasattr(dataset, 'dataset'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


@HOOKS.register_module()
class HallucinationHook(WeightsOnlyCheckpointHook):
    """Give a stock recipe's train pipeline what its ``model.hallucination``
    section needs, in a Runner built from the raw config.

    mmaction2 1.1.0's ``tools/train.py`` builds ``Runner.from_cfg(cfg)``:
    :class:`HalluciNet` applies the section's model side when it is built,
    and this hook, before the first batch (``before_run``), replaces the
    train datasets' pipelines with those :func:`apply_hallucination`
    derives (``HalluSampleFrames``, ``HalluSplitViews``, ``teacher_imgs``;
    with ``hallucination.bank``, the store checked against the config and
    read instead). It is also a :class:`WeightsOnlyCheckpointHook` and
    makes the Runner read every checkpoint ``weights_only=True``, as the
    plugin's tools do. With the plugin's tools (or
    ``runner_type='HalluciNetRunner'``) the config arrives applied and only
    the checkpoint part acts.
    """

    def __init__(self) -> None:
        super().__init__()
        # Before the Runner reads load_from / resume.
        use_safe_checkpoint_loaders()

    def before_run(self, runner) -> None:
        super().before_run(runner)
        model = runner.cfg.get('model') or {}
        section = model.get('hallucination')
        loop = runner._train_loop
        if section is None or not isinstance(loop, BaseLoop):
            return  # applied up front, or not training
        if runner.cfg.get('teacher_bank') and not section.get('bank'):
            raise ValueError(
                'teacher_bank is set at the top level, but the model was '
                'built with its online teacher from model.hallucination: '
                'give the store as model.hallucination.bank '
                '(--cfg-options model.hallucination.bank=STORE)')
        if isinstance(loop, IterBasedTrainLoop) and \
                loop.dataloader.num_workers > 0:
            raise RuntimeError(
                "IterBasedTrainLoop starts its loader's workers when it is "
                'built, before this hook: use the plugin\'s tools/train.py '
                "(or runner_type='HalluciNetRunner'), or num_workers=0")
        cfg = copy.deepcopy(runner.cfg)
        apply_hallucination(cfg)
        configs = pipeline_datasets(cfg.train_dataloader.dataset)
        datasets = _leaf_datasets(loop.dataloader.dataset)
        if len(configs) != len(datasets):
            raise RuntimeError(
                f'{len(datasets)} train datasets built but {len(configs)} '
                'in the config: cannot match their pipelines')
        for dataset, config in zip(datasets, configs):
            dataset.pipeline = Compose(config['pipeline'])
        print_log(
            'HallucinationHook: train pipeline(s) set from '
            'model.hallucination' +
            (f" (feature bank {cfg.teacher_bank})" if cfg.get(
                'teacher_bank_check') else ' (online teacher)'),
            logger='current',
            level=logging.INFO)
