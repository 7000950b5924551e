from .hara_checkpoint import (
                              convert_hara_checkpoint,
                              load_resnext3d_state_dict,
                              read_hara_checkpoint,
)
from .runner import test, train

__all__ = [
    'convert_hara_checkpoint', 'load_resnext3d_state_dict',
    'read_hara_checkpoint', 'train', 'test'
]
