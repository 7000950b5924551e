from .frozen_teacher import FrozenTeacher, build_teacher

__all__ = ['FrozenTeacher', 'build_teacher']
