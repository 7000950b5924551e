"""The ``model.hallucination`` section of a stock mmaction2 2D recipe
turned into HalluciNet's own arguments (teacher, checkpoint, heads and
their widths, per-view normalisation). :class:`HalluciNet` applies it when
built from such a section; ``apply_hallucination`` (engine) applies it to a
whole config, train pipeline included."""
import os.path as osp
from typing import Dict, Optional, Tuple

import mmaction
from mmengine.config import Config

from ...utils.config import to_builtin

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
                where: str) -> None:
    fusion = section.get('fusion', 'concat')
    if fusion not in ('concat', 'direct', 'none'):
        raise ValueError(f"{where}: model.hallucination.fusion must be "
                         f"'concat', 'direct' or 'none', got {fusion!r}")
    _check_recipe(model, where)
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
    model['teacher'] = dict(type='FrozenTeacher', model=teacher,
                            checkpoint=ckpt)
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
    teacher, norm = _teacher(section, where)
    edited = to_builtin(dict(model))
    edited.pop('hallucination', None)
    _edit_model(edited, section, teacher, norm, where)
    return edited
