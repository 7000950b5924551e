"""HalluciNet and MoNet feature hallucination for mmaction2.

``import hallucinet_plugin`` registers every component of the plugin into
mmaction2's own registries (``mmaction.registry.MODELS``, ``TRANSFORMS``,
``DATASETS``, ``METRICS``, ``HOOKS``), so configs use ``type='HalluciNet'``
under the default ``mmaction`` scope. It changes nothing else in torch or
mmengine: checkpoints are handled by ``utils/checkpoint.py`` and
``WeightsOnlyCheckpointHook``.
"""
from . import datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
