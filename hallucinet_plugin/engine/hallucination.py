"""Hallucination added to a stock mmaction2 2D recipe: the whole config.

A child config of an mmaction2 2D recognition recipe names only what is new
(``model.hallucination``, see docs/user_guides/your_recipe.md). The
model side is
:func:`~hallucinet_plugin.models.recognizers.hallucination_section.apply_section`;
:func:`apply_hallucination` applies it to a whole config: model, train
pipelines, the plugin's hooks and the feature bank. The plugin's tools and
``HalluciNetRunner`` call it before the Runner is built;
``HallucinationHook`` does the same for a Runner that mmaction2 1.1.0's own
``tools/train.py`` built from the raw config.
"""
import logging
from typing import Dict, List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..feature_bank import check_teacher_bank, use_teacher_bank
from ..models.recognizers.hallucination_section import (
    STUDENT_RECIPES,
    apply_section,
)
from ..utils.config import pipeline_datasets, to_builtin

# What the plugin's tools add to every run (configs/_base_/default_runtime).
PLUGIN_HOOKS = ('FiniteLossHook', 'WeightsOnlyCheckpointHook')


def _edit_pipeline(pipeline: List[Dict], section: Dict, where: str) -> None:
    """Sampler -> HalluSampleFrames, HalluSplitViews before FormatShape,
    ``teacher_imgs`` packed: in place."""
    types = [t.get('type') for t in pipeline]
    samplers = [i for i, t in enumerate(types) if t == 'SampleFrames']
    if len(samplers) != 1:
        raise ValueError(
            f'{where}: the train pipeline needs exactly one SampleFrames '
            f'(the student segments) to turn into HalluSampleFrames, found '
            f'{len(samplers)}: {types}')
    sampler = pipeline[samplers[0]]
    if sampler.get('clip_len', 1) != 1:
        raise ValueError(
            f"{where}: the recipe samples clip_len={sampler['clip_len']} "
            'frames per segment; hallucination needs a 2D recipe with one '
            f'frame per segment: {STUDENT_RECIPES}. For C2D (a 2D '
            'backbone run over clips), use the TSN recipe with the same '
            'backbone')
    pipeline[samplers[0]] = dict(
        type='HalluSampleFrames',
        clip_len=section.get('clip_len', 16),
        num_segments=sampler.get('num_clips', 1),
        frame_interval=section.get('frame_interval', 1),
        out_of_bound_opt=sampler.get('out_of_bound_opt', 'loop'))
    if 'FormatShape' not in types:
        raise ValueError(f'{where}: the train pipeline has no FormatShape '
                         'before which to split the two views')
    pipeline.insert(
        types.index('FormatShape'),
        dict(
            type='HalluSplitViews',
            teacher_scale=tuple(section.get('teacher_scale', (112, 112)))))
    packs = [t for t in pipeline if t.get('type') == 'PackActionInputs']
    if len(packs) != 1:
        raise ValueError(f'{where}: expected one PackActionInputs in the '
                         'train pipeline')
    keys = tuple(packs[0].get('collect_keys') or ('imgs', ))
    if 'teacher_imgs' not in keys:
        packs[0]['collect_keys'] = keys + ('teacher_imgs', )


def apply_hallucination(cfg: Config,
                        switch_bank: bool = True) -> Optional[Dict]:
    """Apply ``model.hallucination`` (and a top-level ``teacher_bank``) to
    a config, in place; see the module docstring.

    Args:
        cfg (Config): The merged config.
        switch_bank (bool): Check the bank against the config and train
            from it (False: the extractor, which builds the bank).

    Returns:
        dict | None: What the bank check compared, when a bank is used.
    """
    where = cfg.filename or 'config'
    model = cfg.get('model')
    section = model.get('hallucination') if model else None
    if section is not None:
        section = to_builtin(section)
        cfg.model = ConfigDict(apply_section(model, section, where))
        for dataset in pipeline_datasets(cfg.train_dataloader.dataset):
            _edit_pipeline(dataset['pipeline'], section, where)
        hooks = list(cfg.get('custom_hooks') or [])
        present = {h.get('type') for h in hooks}
        if 'HallucinationHook' in present:  # a WeightsOnlyCheckpointHook
            present.add('WeightsOnlyCheckpointHook')
        cfg.custom_hooks = hooks + [
            dict(type=t) for t in PLUGIN_HOOKS if t not in present
        ]
        if section.get('bank'):
            cfg.teacher_bank = section['bank']
        optim = cfg.get('optim_wrapper') or {}
        if optim.get('constructor') == 'TSMOptimWrapperConstructor':
            # The same groups, without the frozen teacher.
            optim['constructor'] = 'HalluciNetOptimWrapperConstructor'
    store = cfg.get('teacher_bank')
    if not switch_bank or store is None or (cfg.get('model')
                                            or {}).get('teacher') is None:
        # No bank, or a config already switched to one.
        return None
    record = check_teacher_bank(cfg, store)
    use_teacher_bank(cfg, store)
    cfg.teacher_bank_check = record
    print_log(
        f'training from the teacher feature bank {store} (checked: '
        f"{', '.join(record['checked'])})",
        logger='current',
        level=logging.INFO)
    return record
