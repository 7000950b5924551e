"""The ``model.hallucination`` section of a stock mmaction2 2D recipe
turned into HalluciNet's own arguments (teacher, checkpoint, heads and
their widths, per-view normalisation). :class:`HalluciNet` applies it when
built from such a section; ``apply_hallucination`` (engine) applies it to a
whole config, train pipeline included."""
from typing import Dict, Optional, Tuple

from mmengine.config import Config

from ...utils.config import to_builtin
from ..teachers.frozen_teacher import build_teacher_for_shapes, inferred_width
from ..teachers.teacher_config import (
    declared_clip,
    merge_cfg_options,
    resolve_config_path,
)

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
    'teacher_cfg_options': "dotted-key overrides of the teacher's config "
    "(as --cfg-options: {'model.backbone.img_size': 64})",
    'teacher_dim': "the teacher's feature width (default: inferred at "
    'clip_len x teacher_scale)',
    'student_dim': "the student's feature width (default: the recipe's "
    'cls_head.in_channels)',
    'teacher_layer': 'a teacher submodule to hallucinate',
    'teacher_pool': "'avg' (default) or 'max'",
    'bank': 'a teacher feature bank to train from',
    'random_teacher': 'allow training without teacher_ckpt (tests only)',
}
def _teacher(section: Dict, where: str) -> Tuple[Dict, Dict, Dict]:
    """The teacher's model dict, its view's normalisation and the clip its
    config declares."""
    teacher = section.get('teacher')
    if teacher is None:
        raise ValueError(f'{where}: model.hallucination.teacher is required '
                         '(a config path, an mmaction:: path or a model '
                         'dict)')
    if isinstance(teacher, str):
        cfg = Config.fromfile(resolve_config_path(teacher, where))
        if cfg.get('model') is None:
            raise ValueError(f'{where}: the teacher config {teacher} has no '
                             'model')
    else:
        cfg = Config(dict(model=to_builtin(teacher)))
    if section.get('teacher_cfg_options'):
        merge_cfg_options(cfg, section['teacher_cfg_options'],
                          f'{where}: model.hallucination.teacher_cfg_options')
    declared = declared_clip(cfg)
    teacher = to_builtin(cfg.model)
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
    return teacher, norm, declared


def _teacher_width(section: Dict, teacher: Dict, declared: Dict,
                   where: str) -> Tuple[int, Tuple[int, int, int]]:
    """The width of the teacher's target at the configured clip shape
    (shape inference) and that shape, checked against ``teacher_dim``."""
    clip_len = section.get('clip_len', 16)
    height, width = section.get('teacher_scale', (112, 112))
    clip_shape = (clip_len, height, width)
    try:
        built = build_teacher_for_shapes(teacher)
    except Exception as err:
        raise ValueError(
            f'{where}: the teacher cannot be built'
            + (' with model.hallucination.teacher_cfg_options'
               if section.get('teacher_cfg_options') else '')
            + f': {type(err).__name__}: {err}') from err
    layer = section.get('teacher_layer')
    if layer is not None and layer not in dict(built.named_modules()):
        raise ValueError(
            f'{where}: model.hallucination.teacher_layer={layer!r} is not a '
            "submodule of the teacher (names as in named_modules(), e.g. "
            "'backbone.layer3')")
    try:
        dim = inferred_width(built, clip_shape, layer,
                             section.get('teacher_pool', 'avg'))
    except Exception as err:
        own = ', '.join(f'{k}={v}' for k, v in declared.items())
        raise ValueError(
            f'{where}: the teacher does not take clips of {clip_len} '
            f'frames at {height}x{width} (model.hallucination.clip_len='
            f'{clip_len}, teacher_scale=({height}, {width})): '
            f'{type(err).__name__}: {err}. '
            + (f'Its config tests on {own}. ' if own else '')
            + 'Transformer teachers fix the clip length and resolution: '
            'set clip_len and teacher_scale to those its checkpoint was '
            'trained with, or shrink the teacher with '
            "model.hallucination.teacher_cfg_options (e.g. {'model."
            "backbone.img_size': 64, 'model.backbone.num_frames': 8}) "
            'and a checkpoint of that geometry') from err
    if section.get('teacher_dim') and section['teacher_dim'] != dim:
        raise ValueError(
            f"{where}: model.hallucination.teacher_dim="
            f"{section['teacher_dim']} but the teacher gives {dim} features "
            f'per clip at {clip_len}x{height}x{width} (layer '
            f"{layer or 'the backbone output'}): "
            'remove teacher_dim (it is inferred) or set it to '
            f'{dim}')
    return dim, clip_shape


def _width(head: Optional[Dict], what: str, key: str, where: str) -> int:
    channels = (head or {}).get('in_channels')
    if not isinstance(channels, int):
        raise ValueError(
            f'{where}: cannot read the {what} feature width from its '
            f'cls_head.in_channels ({channels!r}); set '
            f'model.hallucination.{key}')
    return channels


# The student recipes the section supports, for the refusals' messages.
STUDENT_RECIPES = ('TSN, TSM, TRN, TANet (Recognizer2D, one frame per '
                   'segment) with mmaction2, timm or torchvision backbones')


def _has_tin_shift() -> bool:
    """Whether mmcv has its compiled ``tin_shift`` (full mmcv, not
    mmcv-lite)."""
    try:
        from mmcv.ops import tin_shift  # noqa: F401
    except ImportError:
        return False
    return True


def _check_recipe(model: Dict, where: str) -> None:
    """Refuse, up front and with the way forward, the recipes the section
    cannot turn into HalluciNet."""
    # No type: HalluciNet built from a section by a Runner (the child
    # config set type='HalluciNet' over the recipe's).
    kind = model.get('type')
    backbone = (model.get('backbone') or {}).get('type')
    if kind not in (None, 'Recognizer2D', 'HalluciNet') or backbone == 'C2D':
        raise ValueError(
            f'{where}: the recipe is a {kind} with a {backbone} backbone; '
            'model.hallucination needs a 2D recipe: '
            f'{STUDENT_RECIPES}. For C2D (a 2D ResNet run on clips), use '
            'the TSN recipe with the same ResNet')
    if model.get('neck') is not None:
        raise ValueError(
            f"{where}: the recipe has a neck ({model['neck'].get('type')}, "
            'e.g. TPN), which reads several stages of the backbone; '
            'HalluciNet hallucinates from the backbone\'s output and does '
            'not support necks. Use the recipe without its neck (TPN-TSM: '
            'the TSM recipe) or write HalluciNet yourself '
            '(docs/user_guides/your_recipe.md)')
    if backbone == 'ResNetTIN' and not _has_tin_shift():
        raise ValueError(
            f'{where}: TIN (ResNetTIN) needs the compiled tin_shift of full '
            'mmcv, and this mmcv has no compiled ops (mmcv-lite). Install '
            'full mmcv (mmcv<2.1 for mmaction2 1.1), or use the TSM recipe, '
            'whose temporal shift needs no compiled op')


def _edit_model(model: Dict, section: Dict, teacher: Dict, norm: Dict,
                declared: Dict, where: str) -> None:
    fusion = section.get('fusion', 'concat')
    if fusion not in ('concat', 'direct', 'none'):
        raise ValueError(f"{where}: model.hallucination.fusion must be "
                         f"'concat', 'direct' or 'none', got {fusion!r}")
    _check_recipe(model, where)
    student = section.get('student_dim') or _width(
        model.get('cls_head'), 'student', 'student_dim', where)
    hallucinated, clip_shape = _teacher_width(section, teacher, declared,
                                              where)
    ckpt = section.get('teacher_ckpt')
    if ckpt is None and not section.get('random_teacher', False):
        raise ValueError(
            f'{where}: model.hallucination.teacher_ckpt is not set: the '
            "targets would be an untrained teacher's features. Give the "
            "teacher's checkpoint (random_teacher=True only for smoke "
            'tests)')
    model['type'] = 'HalluciNet'
    model['teacher'] = dict(type='FrozenTeacher', model=teacher,
                            checkpoint=ckpt, clip_shape=clip_shape)
    for key in ('layer', 'pool'):
        if section.get('teacher_' + key) is not None:
            model['teacher'][key] = section['teacher_' + key]
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


def apply_section(model: Dict, section: Dict, where: str = 'config') -> Dict:
    """The ``HalluciNet`` arguments that ``model`` (a stock recipe's
    ``Recognizer2D`` arguments) and its ``hallucination`` ``section`` stand
    for: the online-teacher model, widths and normalisation derived.

    Args:
        model (dict): The recipe's model arguments (``backbone``,
            ``cls_head``, ``data_preprocessor`` ...), without the section.
        section (dict): ``model.hallucination`` (:data:`SECTION_KEYS`).
        where (str): The config file, for messages and relative paths.

    Returns:
        dict: A new dict of model arguments.
    """
    section = to_builtin(section)
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        raise KeyError(
            f'{where}: unknown model.hallucination keys {unknown}; known: '
            + ', '.join(f'{k} ({v})' for k, v in SECTION_KEYS.items()))
    teacher, norm, declared = _teacher(section, where)
    edited = to_builtin(dict(model))
    edited.pop('hallucination', None)
    _edit_model(edited, section, teacher, norm, declared, where)
    return edited
