"""mmengine's checkpoints in types ``torch.load(weights_only=True)`` accepts.

mmengine saves its message hub into every checkpoint: ``HistoryBuffer``
objects holding numpy arrays, numpy scalars, and the buffers' statistics
functions, pickled as ``builtins.getattr(HistoryBuffer, 'min')``; torch's
weights-only loading refuses all of them. :func:`to_plain` turns them into
dicts, tensors and Python scalars and :func:`from_plain` turns them back
(``WeightsOnlyCheckpointHook``, on every save and load).
:func:`sanitize_checkpoint` converts a file written without the hook, once.
"""
import os
import os.path as osp
import pickle
from typing import Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .checkpoint_sources import allowlist, diagnosis
from .pickle_data import (
    CONVERTIBLE,
    PLAIN_KINDS,
    SAFE_GLOBALS,
    STATISTIC_GETATTR,
    history_buffer,
    rebuild,
    resolve,
)

# Marks the dicts that to_plain writes in place of mmengine's objects.
_PLAIN_TYPE = '__plain_type__'


def to_plain(obj):
    """``obj`` with mmengine's ``HistoryBuffer`` objects and numpy values
    turned into dicts, tensors and Python scalars, which ``weights_only``
    loading accepts; containers holding none are returned as they are.

    numpy scalars become Python scalars; buffers and numeric arrays come
    back as they were through :func:`from_plain`.
    """
    if isinstance(obj, HistoryBuffer):
        log_history, count_history = obj.data
        return {
            _PLAIN_TYPE: 'HistoryBuffer',
            'log_history': torch.from_numpy(np.array(log_history)),
            'count_history': torch.from_numpy(np.array(count_history)),
            'max_length': obj.max_length
        }
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in PLAIN_KINDS:
            # torch holds native byte order only.
            native = obj.astype(obj.dtype.newbyteorder('='), order='C')
            return {_PLAIN_TYPE: 'ndarray', 'data': torch.from_numpy(native)}
        return to_plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return rebuild(obj, [to_plain(v) for v in obj.values()])
    if isinstance(obj, (list, tuple)):
        return rebuild(obj, [to_plain(v) for v in obj])
    return obj


def _from_plain_dict(obj):
    kind = obj.get(_PLAIN_TYPE) if isinstance(obj, dict) else None
    if kind == 'HistoryBuffer':
        return history_buffer(obj.get('log_history'),
                              obj.get('count_history'), obj.get('max_length'))
    if kind == 'ndarray':
        data = obj.get('data')
        if not isinstance(data, torch.Tensor):
            raise pickle.UnpicklingError(
                f'refusing a plain ndarray holding {type(data).__name__}')
        return data.numpy()
    if kind is not None:
        raise pickle.UnpicklingError(f'unknown {_PLAIN_TYPE} {kind!r:.80}')
    return None


def from_plain(obj):
    """Undo :func:`to_plain`: ``HistoryBuffer`` objects and numpy arrays
    back from their dicts, checked as :mod:`.pickle_data` checks pickled
    ones; containers holding neither are returned as they are."""
    return resolve(obj, _from_plain_dict)


def sanitize_checkpoint(filename: str,
                        out: Optional[str] = None,
                        trust: bool = False) -> str:
    """Convert a checkpoint written without ``WeightsOnlyCheckpointHook``,
    once, so that plain ``torch.load(weights_only=True)`` loads it, message
    hub included.

    Nothing is ever fully unpickled: numpy's and mmengine's names are read
    through the checked stand-ins of :mod:`.pickle_data` (plain numeric
    data and well-formed buffers only). Checkpoints written by plain
    mmengine also hold ``getattr(HistoryBuffer, 'min')`` and its like:
    with ``trust=True`` ``builtins.getattr`` is accepted, reaching those
    four statistics methods only. Any other global is refused, with or
    without ``trust``.

    Args:
        filename (str): The checkpoint to convert.
        out (str, optional): Where to write; defaults to ``filename``.
        trust (bool): Accept ``builtins.getattr`` (for checkpoints you
            wrote yourself with mmengine).

    Returns:
        str: The path written.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    beyond = sorted(set(found) - CONVERTIBLE)
    if beyond:
        raise PermissionError(
            f'{filename} holds {beyond}, which no checkpoint of mmengine or '
            'the plugin needs: refused, with or without trust')
    stand_ins = [(obj, name) for name, obj in SAFE_GLOBALS.items()]
    if STATISTIC_GETATTR[0] in found:
        if not trust:
            raise PermissionError(
                f'{filename} holds builtins.getattr: converting it resolves '
                "getattr to HistoryBuffer's statistics methods only. Pass "
                'trust=True (--trust) for checkpoints you wrote yourself '
                'with mmengine.')
        stand_ins.append(STATISTIC_GETATTR[::-1])
    with allowlist(stand_ins):
        try:
            checkpoint = resolve(
                torch.load(filename, map_location='cpu', weights_only=True))
        except Exception as err:
            raise RuntimeError(f'{filename}: {diagnosis(err)}') from None
    out = out or filename
    tmp = out + '.tmp'
    torch.save(to_plain(checkpoint), tmp)
    os.replace(tmp, out)
    return out
