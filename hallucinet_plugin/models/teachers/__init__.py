from .frozen_teacher import (
    FrozenTeacher,
    build_teacher,
    build_teacher_for_shapes,
    inferred_width,
    teacher_features,
)
from .teacher_config import (
    declared_clip,
    merge_cfg_options,
    resolve_config_path,
)

__all__ = [
    'FrozenTeacher', 'build_teacher', 'build_teacher_for_shapes',
    'inferred_width', 'teacher_features', 'declared_clip',
    'merge_cfg_options', 'resolve_config_path'
]
