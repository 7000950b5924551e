"""The Runner that mmaction2's own tools build for hallucination configs."""
import copy
import os
import os.path as osp

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
    completed one. The plugin's tools build it too.

    A checkpoint that cannot be written (a full disk, a file size limit)
    leaves no partial file beside the good ones: it is removed and the error
    names it.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'HalluciNetRunner':
        cfg = copy.deepcopy(cfg)
        use_safe_checkpoint_loaders()
        apply_hallucination(cfg)
        setup_cpu_distributed(cfg)
        return super().from_cfg(cfg)

    def save_checkpoint(self, out_dir: str, filename: str, *args,
                        **kwargs) -> None:
        """mmengine's ``save_checkpoint``; on a failed write, the partial
        file is removed and the error names it."""
        try:
            super().save_checkpoint(out_dir, filename, *args, **kwargs)
        except OSError as err:
            path = osp.join(out_dir, filename)
            removed = osp.isfile(path) and '://' not in path
            if removed:
                os.remove(path)
            raise OSError(
                err.errno, f'saving the checkpoint {path} failed '
                f'({err.strerror or err}); '
                + ('the partial file was removed, ' if removed else '')
                + 'earlier checkpoints are untouched') from None
