from .per_frame_backbone import PerFrameBackbone
from .resnext3d import ResNeXt3D

__all__ = ['PerFrameBackbone', 'ResNeXt3D']
