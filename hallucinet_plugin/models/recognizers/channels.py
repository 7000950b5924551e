"""What HalluciNet checks when it is built: the feature widths (student,
hallucination head, teacher, classifiers) and the teacher view's
normalisation."""
import logging
from typing import Optional

from mmengine.logging import print_log


def student_channels(model) -> Optional[int]:
    """Student feature size per segment, when known before a forward."""
    if model.backbone_from == 'timm':
        channels = getattr(model.backbone, 'head_hidden_size',
                           None) or model.backbone.num_features
    else:
        channels = getattr(model.backbone, 'feat_dim', None)
    return channels and channels * model.frames_per_segment


def check_channels(model) -> None:
    """Raise naming the key when two widths of ``model`` (a
    :class:`HalluciNet`) disagree: student vs ``hallu_head.in_channels``,
    the teacher's output at its configured clip shape (shape inference,
    the teacher does not run) vs ``hallu_head.out_channels``, and what the
    fusion gives vs the classifiers' ``in_channels``."""
    student = student_channels(model)
    head = model.hallu_head
    if head is not None and student is not None \
            and head.in_channels != student:
        timm = (" (a timm student's width is its pre-logits width, "
                '`head_hidden_size or num_features`, not the last feature '
                "map's channels)" if model.backbone_from == 'timm' else '')
        raise ValueError(
            f'hallu_head.in_channels={head.in_channels} but the student '
            f'gives {student} features per segment '
            f'({model.frames_per_segment} frame(s)){timm}: with a '
            'model.hallucination section, set the recipe\'s '
            f'model.cls_head.in_channels (or '
            f'model.hallucination.student_dim) to {student}')
    teacher = getattr(model, 'teacher', None)
    if head is not None and teacher is not None \
            and teacher.clip_shape is not None:
        try:
            width = teacher.output_width()
        except Exception as err:
            raise ValueError(
                'the teacher does not take clips of (T, H, W) = '
                f'{teacher.clip_shape} (teacher.clip_shape): {err}') from err
        if width != head.out_channels:
            raise ValueError(teacher_width_error(head.out_channels, width,
                                                 teacher.layer))
    check_classifier_channels(model)


def teacher_width_error(expected: int, width: int, layer: Optional[str],
                        source: str = 'the teacher') -> str:
    """The message of a teacher target whose width is not the hallucination
    head's ``out_channels``."""
    return (f'hallu_head.out_channels={expected} but {source} gives '
            f'{width} features per clip (layer '
            f'{layer or "the backbone output"}): set '
            f'model.hallucination.teacher_dim (or hallu_head.out_channels) '
            f'to {width}')


def check_classifier_channels(model) -> None:
    """Raise when the classifier's ``in_channels`` is not what the fusion
    of ``model`` (a :class:`HalluciNet`) gives it."""
    student = student_channels(model)
    head = model.hallu_head
    if not model.with_cls_head or not hasattr(model.cls_head,
                                              'in_channels'):
        return
    if head is None:
        expected = student
    elif model.fusion == 'concat':
        expected = head.in_channels + head.out_channels
    elif model.fusion == 'direct':
        expected = head.out_channels
    else:
        expected = head.in_channels
    if expected is not None and model.cls_head.in_channels != expected:
        raise ValueError(
            f'cls_head.in_channels={model.cls_head.in_channels} but '
            f"fusion='{model.fusion}' gives the classifier {expected} "
            'features per segment')


def check_stream_channels(model) -> None:
    """Raise when the second classifier of a :class:`LateFusionHalluciNet`
    does not read the hallucinated stream's width."""
    head, hallu_cls = model.hallu_head, model.hallu_cls_head
    if hasattr(hallu_cls, 'in_channels') \
            and hallu_cls.in_channels != head.out_channels:
        raise ValueError(
            f'hallu_cls_head.in_channels={hallu_cls.in_channels} but the '
            f'hallucinated stream has {head.out_channels} features')


def check_teacher_view(model) -> None:
    """Warn when ``model`` has an online teacher whose view is not
    normalised: ``data_preprocessor.teacher`` without mean and std feeds
    the teacher raw 0-255 pixels, right only for a teacher trained so."""
    teacher = getattr(model, 'teacher', None)
    view = getattr(model.data_preprocessor, 'teacher', None)
    if teacher is None or getattr(view, '_enable_normalize', True):
        return
    declared = getattr(teacher.model, 'declared_norm', None)
    hint = (f' (the teacher config says mean={declared["mean"]}, '
            f'std={declared["std"]})') if declared and len(declared) == 2 \
        else ''
    print_log(
        'HalluciNet: the teacher view is not normalised: '
        'data_preprocessor.teacher has no mean/std, so the frozen teacher '
        'sees raw 0-255 pixels. Set data_preprocessor.teacher=dict(mean=..., '
        f'std=...) to the values it was trained with{hint}',
        logger='current',
        level=logging.WARNING)
