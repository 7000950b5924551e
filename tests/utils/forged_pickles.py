"""Checkpoints and pickles forged the way an attacker would: numpy dtypes
whose state lies about holding objects, and ``HistoryBuffer`` states that
replace the statistics methods of every buffer in the process.

Each writes real pickles through ``torch.save``/``pickle.dump`` (the
objects' ``__reduce__`` says what the file holds), so the files carry the
same global names as genuine numpy/mmengine data.
"""
import copy
from typing import Any, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import _reconstruct, scalar


class Reduce:
    """Pickles as ``__reduce__`` returns: ``(callable, args[, state])``."""

    def __init__(self, *reduce_value: Any) -> None:
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


# An object field under flags that claim no objects (flags 0): numpy then
# reads the field's 8 bytes as a PyObject pointer.
OBJECT_FIELD_STATE = (3, '|', None, ('a', ), {
    'a': (np.dtype('u8'), 0)
}, 8, 1, 0)


def object_field_dtype() -> Reduce:
    state = copy.deepcopy(OBJECT_FIELD_STATE)
    state[4]['a'] = (np.dtype('O'), 0)
    return Reduce(np.dtype, ('V8', False, True), state)


def plain_name_forged_state() -> Reduce:
    """``numpy.dtype('f8')`` followed by a record dtype's state."""
    return Reduce(np.dtype, ('f8', False, True), OBJECT_FIELD_STATE)


def array_of(dtype: Any, raw: bytes = b'\x41' * 8) -> Reduce:
    return Reduce(_reconstruct, (np.ndarray, (0, ), b'b'),
                  (1, (1, ), dtype, False, raw))


def scalar_of(dtype: Any, raw: bytes = b'\x41' * 8) -> Reduce:
    return Reduce(scalar, (dtype, raw))


# name -> (value placed in a checkpoint, words the refusal must contain)
FORGED: Dict[str, Any] = {
    'object-field-array': (lambda: array_of(object_field_dtype()),
                           "numpy dtype 'V8'"),
    'object-field-scalar': (lambda: scalar_of(object_field_dtype()),
                            "numpy dtype 'V8'"),
    'forged-state': (lambda: array_of(plain_name_forged_state()),
                     'not the state of a plain dtype'),
    'short-data': (lambda: array_of(np.dtype('f8'), b'\x41' * 4),
                   'its data is 4 bytes'),
    'object-dtype': (lambda: array_of(np.dtype('O')), "numpy dtype 'O8'"),
}


def hostile_buffer(**changes: Any) -> Reduce:
    """A ``HistoryBuffer`` (``HistoryBuffer()`` then its state, as the
    pickle says) whose state is changed by ``changes``."""
    state = HistoryBuffer([1.0, 2.0], [1, 1]).__dict__.copy()
    state.update(changes)
    return Reduce(HistoryBuffer, (), state)


HOSTILE_BUFFERS: Dict[str, Any] = {
    'statistics-replaced':
    (lambda: hostile_buffer(statistics_methods={
        'mean': 1,
        'max': 1
    }), 'replaces the statistics methods'),
    'lengths-differ': (lambda: hostile_buffer(_count_history=np.array([1])),
                       'lengths 2 and 1'),
    'negative-length': (lambda: hostile_buffer(max_length=-1),
                        'max_length -1'),
    'extra-key': (lambda: hostile_buffer(hook='x'), "'hook'"),
}


def save_checkpoint(path: str, value: Any) -> str:
    """A checkpoint whose message hub holds ``value``."""
    torch.save(
        {
            'state_dict': {
                'w': torch.zeros(1)
            },
            'message_hub': {
                'log_scalars': {
                    'train/loss': value
                }
            }
        }, path)
    return path

