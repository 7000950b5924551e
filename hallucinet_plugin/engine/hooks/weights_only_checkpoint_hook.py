"""Runner checkpoints that load with ``torch.load(weights_only=True)``."""
import contextlib
from typing import Optional

from mmaction.registry import HOOKS
from mmengine.hooks import Hook

from ...utils.checkpoint import from_plain, mmengine_safe_globals, to_plain


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
    run's logged history goes on. While the Runner reads its ``load_from`` /
    ``resume`` checkpoint (from ``before_run`` to the start of the loop),
    mmengine's data types, never ``getattr``, are allowlisted, so that
    checkpoints written without the hook by earlier versions of the plugin
    load too. Nothing outside a run is changed.

    ``tools/train.py`` and ``tools/test.py`` add it; with mmaction2's own
    tools, list it in ``custom_hooks``.
    """

    priority = 'VERY_LOW'  # saves what every other hook added

    def __init__(self) -> None:
        self._allowlist: Optional[contextlib.ExitStack] = None

    def before_run(self, runner) -> None:
        self._release()
        self._allowlist = contextlib.ExitStack()
        self._allowlist.enter_context(mmengine_safe_globals())

    def _release(self, runner=None) -> None:
        if self._allowlist is not None:
            self._allowlist.close()
            self._allowlist = None

    # The Runner loads its checkpoint after before_run and before the loop.
    before_train = before_val = before_test = after_run = _release

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.update(to_plain(checkpoint))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.update(from_plain(checkpoint))
