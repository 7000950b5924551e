"""The Runner that mmaction2's own tools build for hallucination configs."""
import copy

from mmaction.registry import RUNNERS
from mmengine.config import Config
from mmengine.runner import Runner

from ..utils.checkpoint_sources import use_safe_checkpoint_loaders
from .distributed import setup_cpu_distributed
from .hallucination import apply_hallucination


@RUNNERS.register_module()
class HalluciNetRunner(Runner):
    """mmengine's Runner, built from a config that
    :func:`~.hallucination.apply_hallucination` has completed.

    mmaction2 >= 1.2's ``tools/train.py`` and ``tools/test.py`` (and so
    ``dist_train.sh``) build ``RUNNERS.build(cfg)`` when the config sets
    ``runner_type`` (1.1.0's always build ``Runner.from_cfg``: use
    ``HallucinationHook`` there); with ``runner_type = 'HalluciNetRunner'``
    they get what the plugin's own tools do: the ``model.hallucination``
    section applied, a ``teacher_bank`` (config key or ``--cfg-options
    teacher_bank=STORE``) checked against the config and switched to,
    checkpoints of every scheme read with ``weights_only=True``, and gloo
    for CPU ``torchrun``. The dumped config in the work dir is the
    completed one.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'HalluciNetRunner':
        cfg = copy.deepcopy(cfg)
        use_safe_checkpoint_loaders()
        apply_hallucination(cfg)
        setup_cpu_distributed(cfg)
        return super().from_cfg(cfg)
