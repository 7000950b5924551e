from .hallucinet_optim_wrapper_constructor import (
    HalluciNetOptimWrapperConstructor,
)

__all__ = ['HalluciNetOptimWrapperConstructor']
