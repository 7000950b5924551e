from .hallucinet import HalluciNet

__all__ = ['HalluciNet']
