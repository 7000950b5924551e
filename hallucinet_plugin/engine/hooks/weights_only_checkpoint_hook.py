"""Runner checkpoints that load with ``torch.load(weights_only=True)``."""
from mmaction.registry import HOOKS
from mmengine.hooks import Hook

from ...utils.checkpoint_plain import from_plain, to_plain
from ...utils.checkpoint_sources import use_safe_checkpoint_loaders


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Write the Runner's checkpoints in types ``weights_only`` loading
    accepts, and read them back.

    mmengine saves its message hub as ``HistoryBuffer`` objects, numpy
    values and ``getattr`` calls, which torch's default ``weights_only``
    loading refuses: without this hook neither ``load_from`` (test) nor
    ``resume`` reads a fresh checkpoint. Before every save the hook turns
    them into dicts, tensors and Python scalars (:func:`to_plain`), after
    every load it turns the buffers back (:func:`from_plain`), so a resumed
    run's logged history goes on. From ``before_run`` on (the Runner reads
    its ``load_from`` / ``resume`` checkpoint after it), mmengine reads
    every checkpoint weights only (:func:`use_safe_checkpoint_loaders`): one
    written without the hook is refused, naming
    ``tools/sanitize_checkpoint.py``, which converts it once.

    ``tools/train.py`` and ``tools/test.py`` add it; with mmaction2's own
    tools, list it in ``custom_hooks``.
    """

    priority = 'VERY_LOW'  # saves what every other hook added

    def before_run(self, runner) -> None:
        use_safe_checkpoint_loaders()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.update(to_plain(checkpoint))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.update(from_plain(checkpoint))
