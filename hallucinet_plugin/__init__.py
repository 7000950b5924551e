"""HalluciNet and MoNet feature hallucination for mmaction2.

``import hallucinet_plugin`` registers every component of the plugin into
mmaction2's own registries (``mmaction.registry.MODELS``, ``TRANSFORMS``,
``DATASETS``, ``METRICS``), so configs use ``type='HalluciNet'`` under the
default ``mmaction`` scope, and makes mmengine's own checkpoints loadable
under ``torch.load(weights_only=True)`` (see ``utils/checkpoint.py``).
"""
from .utils.checkpoint import register_safe_checkpoint_globals

register_safe_checkpoint_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
