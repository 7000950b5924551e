"""Hallucination added to a stock mmaction2 2D recipe by a few config lines.

A child config of any mmaction2 recognition recipe (TSN, TSM, TRN, TIN,
TANet, timm backbones) names only what is new::

    _base_ = 'mmaction::recognition/tsn/...py'   # or a path
    custom_imports = dict(imports=['hallucinet_plugin'])
    runner_type = 'HalluciNetRunner'
    model = dict(
        type='HalluciNet',
        hallucination=dict(
            teacher='mmaction::recognition/r3d/...py',
            teacher_ckpt='checkpoints/r3d.pth',
            loss_weight=50.))

:func:`apply_hallucination` derives the rest from the recipe and the
teacher's own config: the train pipeline's sampler and view split, the
hallucination head's and classifier's widths, the per-view normalisation,
the plugin's hooks, and the feature bank switch. ``HalluciNetRunner`` (for
mmaction2's own ``tools/train.py``, ``tools/test.py``, ``dist_train.sh``)
and the plugin's tools call it before the Runner is built.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Tuple

import mmaction
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..feature_bank import check_teacher_bank, use_teacher_bank
from ..utils.config import pipeline_datasets, to_builtin

SECTION_KEYS = {
    'teacher': 'the 3D teacher: a config path, an mmaction:: path or a '
    'model dict',
    'teacher_ckpt': "the teacher's checkpoint (required)",
    'loss_weight': 'lambda of the hallucination loss (default 50)',
    'fusion': "'concat' (default), 'direct' or 'none'",
    'clip_len': 'teacher frames per student frame (default 16)',
    'frame_interval': "the teacher clip's frame interval (default 1)",
    'teacher_scale': "the teacher view's size (default (112, 112))",
    'teacher_norm': "the teacher view's mean/std (default: from the "
    "teacher's config)",
    'teacher_dim': "the teacher's feature width (default: its "
    "cls_head.in_channels)",
    'student_dim': "the student's feature width (default: the recipe's "
    'cls_head.in_channels)',
    'teacher_layer': 'a teacher submodule to hallucinate',
    'teacher_pool': "'avg' (default) or 'max'",
    'bank': 'a teacher feature bank to train from',
    'random_teacher': 'allow training without teacher_ckpt (tests only)',
}
# What the plugin's tools add to every run (configs/_base_/default_runtime).
PLUGIN_HOOKS = ('FiniteLossHook', 'WeightsOnlyCheckpointHook')


def resolve_config_path(path: str, relative_to: Optional[str] = None) -> str:
    """A config file named by path or ``mmaction::`` (mmaction2's packaged
    configs, read without mmengine's metafile lookup, which fails on
    mmaction2 1.1.0)."""
    if path.startswith('mmaction::'):
        root = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')
        resolved = osp.join(root, path[len('mmaction::'):])
    elif relative_to and not osp.isabs(path) and osp.isfile(
            osp.join(osp.dirname(relative_to), path)):
        resolved = osp.join(osp.dirname(relative_to), path)
    else:
        resolved = path
    if not osp.isfile(resolved):
        raise FileNotFoundError(f'config not found: {path}'
                                + (f' ({resolved})' if resolved != path
                                   else ''))
    return resolved


def _teacher(section: Dict, where: str) -> Tuple[Dict, Dict]:
    """The teacher's model dict and its view's normalisation."""
    teacher = section.get('teacher')
    if teacher is None:
        raise ValueError(f'{where}: model.hallucination.teacher is required '
                         '(a config path, an mmaction:: path or a model '
                         'dict)')
    if isinstance(teacher, str):
        model = Config.fromfile(resolve_config_path(teacher, where)).get(
            'model')
        if model is None:
            raise ValueError(f'{where}: the teacher config {teacher} has no '
                             'model')
        teacher = model
    teacher = to_builtin(teacher)
    norm = teacher.get('data_preprocessor')
    teacher.pop('data_preprocessor', None)
    if section.get('teacher_norm') is not None:
        norm = to_builtin(section['teacher_norm'])
    if not norm or norm.get('mean') is None or norm.get('std') is None:
        raise ValueError(
            f'{where}: the teacher view\'s normalisation is unknown: the '
            'teacher has no data_preprocessor with mean and std. Set '
            'model.hallucination.teacher_norm=dict(mean=[...], std=[...]) '
            'to the values the teacher was trained with (raw 0-255 pixels '
            'would be silently wrong)')
    norm = {k: norm[k] for k in ('mean', 'std', 'to_rgb') if k in norm}
    # The checkpoint replaces every weight: no ImageNet download for the
    # teacher's backbone.
    backbone = teacher.get('backbone')
    if isinstance(backbone, dict):
        for key in ('pretrained', 'pretrained2d'):
            if key in backbone:
                backbone[key] = None if key == 'pretrained' else False
    return teacher, norm


def _width(head: Optional[Dict], what: str, key: str, where: str) -> int:
    channels = (head or {}).get('in_channels')
    if not isinstance(channels, int):
        raise ValueError(
            f'{where}: cannot read the {what} feature width from its '
            f'cls_head.in_channels ({channels!r}); set '
            f'model.hallucination.{key}')
    return channels


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
            'frame per segment (TSN, TSM, TRN, TIN, TANet ...)')
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


def _edit_model(model: Dict, section: Dict, teacher: Dict, norm: Dict,
                where: str) -> None:
    fusion = section.get('fusion', 'concat')
    if fusion not in ('concat', 'direct', 'none'):
        raise ValueError(f"{where}: model.hallucination.fusion must be "
                         f"'concat', 'direct' or 'none', got {fusion!r}")
    if model.get('neck') is not None:
        raise ValueError(f'{where}: the recipe has a neck '
                         f"({model['neck'].get('type')}); HalluciNet "
                         'hallucinates from the backbone features')
    student = section.get('student_dim') or _width(
        model.get('cls_head'), 'student', 'student_dim', where)
    if section.get('teacher_dim'):
        hallucinated = section['teacher_dim']
    elif section.get('teacher_layer'):
        raise ValueError(f'{where}: with teacher_layer, set '
                         'model.hallucination.teacher_dim to that layer\'s '
                         'channels')
    else:
        hallucinated = _width(teacher.get('cls_head'), 'teacher',
                              'teacher_dim', where)
    ckpt = section.get('teacher_ckpt')
    if ckpt is None and not section.get('random_teacher', False):
        raise ValueError(
            f'{where}: model.hallucination.teacher_ckpt is not set: the '
            "targets would be an untrained teacher's features. Give the "
            "teacher's checkpoint (random_teacher=True only for smoke "
            'tests)')
    model['type'] = 'HalluciNet'
    model['teacher'] = teacher
    model['teacher_ckpt'] = ckpt
    for key in ('teacher_layer', 'teacher_pool'):
        if section.get(key) is not None:
            model[key] = section[key]
    model['fusion'] = fusion
    model['hallu_head'] = dict(
        type='HallucinationHead',
        in_channels=student,
        out_channels=hallucinated,
        loss_hallu=dict(
            type='HallucinationLoss',
            loss_weight=float(section.get('loss_weight', 50.0))))
    model['cls_head'] = dict(
        model['cls_head'],
        in_channels={
            'concat': student + hallucinated,
            'direct': hallucinated,
            'none': student
        }[fusion])
    preprocessor = dict(model.get('data_preprocessor') or {})
    preprocessor.update(type='HalluciNetDataPreprocessor', teacher=norm)
    preprocessor.setdefault('format_shape', 'NCHW')
    model['data_preprocessor'] = preprocessor


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
        unknown = sorted(set(section) - set(SECTION_KEYS))
        if unknown:
            raise KeyError(
                f'{where}: unknown model.hallucination keys {unknown}; '
                'known: ' + ', '.join(
                    f'{k} ({v})' for k, v in SECTION_KEYS.items()))
        teacher, norm = _teacher(section, where)
        edited = to_builtin(model)
        edited.pop('hallucination')
        _edit_model(edited, section, teacher, norm, where)
        cfg.model = ConfigDict(edited)
        for dataset in pipeline_datasets(cfg.train_dataloader.dataset):
            _edit_pipeline(dataset['pipeline'], section, where)
        hooks = list(cfg.get('custom_hooks') or [])
        present = {h.get('type') for h in hooks}
        cfg.custom_hooks = hooks + [
            dict(type=t) for t in PLUGIN_HOOKS if t not in present
        ]
        if section.get('bank'):
            cfg.teacher_bank = section['bank']
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
