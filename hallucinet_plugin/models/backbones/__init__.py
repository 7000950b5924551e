from .resnext3d import ResNeXt3D

__all__ = ['ResNeXt3D']
