"""Loading mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` refuses any pickled global that is not on an
allowlist. mmengine 0.10.7 writes, besides tensors, its message hub
(``HistoryBuffer`` objects holding numpy arrays and numpy scalars) and, inside
each ``HistoryBuffer``, the functions ``HistoryBuffer.min/max/current/mean``,
which protocol-2 pickles as ``builtins.getattr(HistoryBuffer, 'min')``. So
out of the box neither ``tools/test.py`` nor ``--resume`` can read a fresh
checkpoint.

The plugin fixes this without ever unpickling with ``weights_only=False``:

* it allowlists the few *data* types mmengine writes (``HistoryBuffer``,
  numpy arrays, dtypes and scalars), none of which can call code;
* it makes ``HistoryBuffer`` pickle without the default statistics functions
  (``__setstate__`` restores them anyway), so checkpoints written with the
  plugin imported contain no ``getattr`` at all. ``builtins.getattr`` is *not*
  allowlisted: it would let a checkpoint call any attribute of any allowed
  object.

Checkpoints written by plain mmengine (without the plugin) still contain
``getattr``; :func:`sanitize_checkpoint` rewrites such a file once, only when
the user states that they trust it (``tools/sanitize_checkpoint.py --trust``).
"""
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _numpy_safe_globals() -> List:
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    safe = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes as instances of these per-type classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and name != 'StringDType'
        ]
    return safe


def _history_buffer_getstate(self) -> dict:
    # Unlike mmengine's own __getstate__, do not mutate ``self`` and leave
    # out the default statistics functions, which __setstate__ restores.
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if name not in _DEFAULT_STATISTICS
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def register_safe_checkpoint_globals() -> None:
    """Allowlist mmengine's checkpoint data types for ``weights_only`` loads.

    Called once by ``import hallucinet_plugin``; safe to call again.
    """
    torch.serialization.add_safe_globals([HistoryBuffer] +
                                         _numpy_safe_globals())
    HistoryBuffer.__getstate__ = _history_buffer_getstate


def unsafe_globals(filename: str) -> List[str]:
    """Globals in a checkpoint that ``weights_only=True`` would refuse."""
    register_safe_checkpoint_globals()
    allowed = {
        f'{obj.__module__}.{obj.__qualname__}'
        for obj in torch.serialization.get_safe_globals()
        if not isinstance(obj, tuple)
    }
    return [
        name for name in torch.serialization.get_unsafe_globals_in_checkpoint(
            filename) if name not in allowed
    ]


def sanitize_checkpoint(filename: str,
                        out: Optional[str] = None,
                        trust: bool = False) -> str:
    """Rewrite a checkpoint so that ``weights_only=True`` can load it.

    Reading the old file requires full unpickling, which can run arbitrary
    code: this is done only with ``trust=True``, for checkpoints the user
    wrote themselves (for example with plain mmengine, before installing the
    plugin).

    Args:
        filename (str): The checkpoint to rewrite.
        out (str, optional): Where to write; defaults to ``filename``.
        trust (bool): Confirms the file comes from a trusted source.

    Returns:
        str: The path written.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    if not trust:
        raise PermissionError(
            f'{filename}: rewriting needs full unpickling, which can run '
            'code from the file. Pass trust=True (--trust) only for '
            'checkpoints you wrote yourself.')
    register_safe_checkpoint_globals()
    checkpoint = torch.load(filename, map_location='cpu', weights_only=False)
    out = out or filename
    tmp = out + '.tmp'
    torch.save(checkpoint, tmp)
    os.replace(tmp, out)
    remaining = unsafe_globals(out)
    if remaining:
        raise RuntimeError(f'{out} still holds globals that weights_only '
                           f'loading refuses: {remaining}')
    return out


def read_state_dict(filename: str, key: str, what: str) -> Dict:
    """The state dict of a checkpoint (``module.`` prefixes removed).

    Args:
        filename (str): A checkpoint path or URL.
        key (str): The config key that gave it, for the error messages.
        what (str): What it should be, for the error messages.
    """
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'{key} not found: {filename} (set model.{key} to {what})')
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{filename}: not a checkpoint with a state dict')
    return {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state.items()
    }
