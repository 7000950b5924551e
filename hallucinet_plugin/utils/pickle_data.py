"""numpy values and mmengine ``HistoryBuffer`` objects rebuilt from pickles
without trusting the pickle.

Allowlisting ``numpy.dtype`` itself is not memory-safe: unpickling calls
``dtype.__setstate__`` with the file's state, and a forged state (an object
field under flags that claim none) makes numpy read pointers from the file's
bytes, so the process segfaults later. Allowlisting ``HistoryBuffer`` lets a
file replace the statistics methods of every buffer in the process (its
``__setstate__`` updates a class-level dict).

Here those names unpickle into stand-ins (:class:`DTypeSpec`,
:class:`ArraySpec`, :class:`HistoryBufferSpec`) whose ``__setstate__``
accepts only the state numpy and mmengine write for plain numeric data, and
rebuilds the value from it; :func:`resolve` swaps the stand-ins for the
real objects after loading. :data:`SAFE_GLOBALS` maps the pickled names to
them, for the MTL-AQA reader and for the one-time conversion of
checkpoints written without ``WeightsOnlyCheckpointHook``
(:func:`~.checkpoint_plain.sanitize_checkpoint`); ordinary checkpoint reads
allow none of them.
"""
import pickle
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from mmengine.logging import HistoryBuffer

# Bool, signed and unsigned integers, floats and complex numbers.
PLAIN_KINDS = 'biufc'
# The default statistics HistoryBuffer pickles as getattr(HistoryBuffer, m).
STATISTICS = ('min', 'max', 'current', 'mean')


def _refuse(message: str) -> None:
    raise pickle.UnpicklingError(message)


def plain_dtype(spec: Any) -> np.dtype:
    """The numpy dtype named by ``spec`` if it is a plain numeric one.

    Raises:
        pickle.UnpicklingError: ``spec`` is not a string naming a bool,
            integer, float or complex dtype (objects, records, sub-arrays,
            strings and datetimes are refused).
    """
    if not isinstance(spec, str):
        _refuse(f'refusing a numpy dtype given as {type(spec).__name__}')
    try:
        dtype = np.dtype(spec)
    except TypeError as err:
        _refuse(f'refusing numpy dtype {spec!r}: {err}')
    if (dtype.kind not in PLAIN_KINDS or dtype.fields is not None
            or dtype.subdtype is not None or dtype.hasobject):
        _refuse(f'refusing numpy dtype {spec!r}: only bool, integer, float '
                'and complex dtypes are rebuilt')
    return dtype


class DTypeSpec:
    """Stands in for ``numpy.dtype(spec, align, copy)`` while unpickling.

    Only the state numpy writes for a plain dtype is accepted:
    ``(3, byteorder, None, None, None, -1, -1, 0)``.
    """

    dtype: Optional[np.dtype] = None

    def __init__(self, spec: Any, align: bool = False,
                 copy: bool = True) -> None:
        self.dtype = plain_dtype(spec)
        if align not in (False, 0):
            _refuse(f'refusing aligned numpy dtype {spec!r}')

    def __setstate__(self, state: Any) -> None:
        if self.dtype is None:
            _refuse('refusing a numpy dtype built without its name')
        if (not isinstance(state, tuple) or len(state) != 8
                or state[0] != 3 or state[1] not in ('<', '>', '|', '=')
                or state[2:] != (None, None, None, -1, -1, 0)):
            _refuse(f'refusing numpy dtype {self.dtype.str!r} with state '
                    f'{state!r:.200}: not the state of a plain dtype')
        if state[1] in '<>':
            self.dtype = self.dtype.newbyteorder(state[1])

    def __repr__(self) -> str:
        return f'DTypeSpec({getattr(self.dtype, "str", None)!r})'

    def resolve(self) -> np.dtype:
        if self.dtype is None:
            _refuse('refusing a numpy dtype built without its name')
        return self.dtype


def _dtype_of(value: Any, what: str) -> np.dtype:
    if not isinstance(value, DTypeSpec):
        _refuse(f'refusing a numpy {what} whose dtype is a '
                f'{type(value).__name__}')
    return value.resolve()


def numpy_scalar(dtype: Any, data: Any = b'') -> np.generic:
    """Stands in for ``numpy.core.multiarray.scalar``: a plain scalar from
    exactly ``itemsize`` bytes."""
    dtype = _dtype_of(dtype, 'scalar')
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        _refuse(f'refusing a numpy {dtype} scalar from {type(data).__name__} '
                f'of length {len(data) if isinstance(data, bytes) else "?"}')
    return np.frombuffer(data, dtype=dtype, count=1)[0]


class ArraySpec:
    """Stands in for ``numpy.ndarray`` while unpickling: its state must be
    ``(1, shape, plain dtype, is_fortran, raw bytes)`` whose bytes fill the
    shape exactly."""

    array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            _refuse(f'refusing numpy array state {state!r:.200}')
        _, shape, dtype, fortran, raw = state
        dtype = _dtype_of(dtype, 'array')
        if not (isinstance(shape, tuple) and all(
                type(n) is int and n >= 0 for n in shape)):
            _refuse(f'refusing numpy array shape {shape!r:.200}')
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not isinstance(raw, bytes) or len(raw) != size * dtype.itemsize:
            _refuse(f'refusing numpy array {shape} of {dtype}: its data is '
                    f'{len(raw) if isinstance(raw, bytes) else "not"} bytes')
        order = 'F' if fortran else 'C'
        self.array = np.frombuffer(
            raw, dtype=dtype).reshape(shape, order=order).copy(order='A')

    def resolve(self) -> np.ndarray:
        if self.array is None:
            _refuse('refusing a numpy array without its data')
        return self.array


def reconstruct_array(subtype: Any, shape: Any = (0, ),
                      typecode: Any = b'b') -> ArraySpec:
    """Stands in for ``numpy.core.multiarray._reconstruct``."""
    if subtype is not ArraySpec:
        _refuse(f'refusing to reconstruct a numpy array of {subtype!r:.100}')
    return ArraySpec()


def history_buffer(log_history: Any, count_history: Any,
                   max_length: Any) -> HistoryBuffer:
    """A ``HistoryBuffer`` from checked parts: two 1-D numeric arrays (or
    tensors) of equal length, no longer than the positive ``max_length``."""
    if type(max_length) is not int or max_length <= 0:
        _refuse(f'refusing HistoryBuffer max_length {max_length!r:.100}')
    arrays = []
    for name, value in (('log', log_history), ('count', count_history)):
        if hasattr(value, 'numpy') and not isinstance(value, np.ndarray):
            value = value.numpy()
        if (not isinstance(value, np.ndarray) or value.ndim != 1
                or value.dtype.kind not in PLAIN_KINDS):
            _refuse(f'refusing HistoryBuffer {name} history of '
                    f'{type(value).__name__} '
                    f'{getattr(value, "dtype", "")}'.rstrip())
        arrays.append(value)
    if len(arrays[0]) != len(arrays[1]) or len(arrays[0]) > max_length:
        _refuse(f'refusing HistoryBuffer histories of lengths '
                f'{len(arrays[0])} and {len(arrays[1])} (max {max_length})')
    return HistoryBuffer(arrays[0], arrays[1], max_length)


class StatisticRef:
    """What ``getattr(HistoryBuffer, name)`` unpickles to: a name, checked
    against :data:`STATISTICS`."""

    def __init__(self, name: str) -> None:
        self.name = name


def statistic_getattr(owner: Any, name: Any) -> StatisticRef:
    """Stands in for ``builtins.getattr``: reaches only the default
    statistics methods of ``HistoryBuffer``."""
    if owner is not HistoryBufferSpec or name not in STATISTICS:
        owner = 'HistoryBuffer' if owner is HistoryBufferSpec else owner
        _refuse(f'refusing getattr({owner!r:.80}, {name!r:.80}): only '
                f'HistoryBuffer.{"/".join(STATISTICS)} are rebuilt')
    return StatisticRef(name)


class HistoryBufferSpec:
    """Stands in for mmengine's ``HistoryBuffer`` while unpickling.

    The state holds ``max_length`` and the two histories; a
    ``statistics_methods`` entry is accepted only when it names the default
    methods by themselves (it would otherwise replace them for every buffer
    in the process).
    """

    buffer: Optional[HistoryBuffer] = None
    _KEYS = {'max_length', '_log_history', '_count_history'}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            _refuse(f'refusing HistoryBuffer state {state!r:.200}')
        extra = set(state) - self._KEYS - {'statistics_methods'}
        if extra or not self._KEYS <= set(state):
            _refuse(f'refusing HistoryBuffer state with keys '
                    f'{sorted(map(str, state))}')
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict) or any(
                not isinstance(ref, StatisticRef) or ref.name != key
                for key, ref in methods.items()):
            _refuse('refusing a HistoryBuffer state that replaces the '
                    'statistics methods of every HistoryBuffer')
        self.buffer = history_buffer(
            resolve(state['_log_history']), resolve(state['_count_history']),
            state['max_length'])

    def resolve(self) -> HistoryBuffer:
        if self.buffer is None:
            _refuse('refusing a HistoryBuffer without its state')
        return self.buffer


def without_lengths(cls: type) -> Callable:
    """``bytes``/``bytearray`` that refuse to be built from a length: a few
    bytes of pickle could otherwise ask for any amount of memory. Protocol
    2 pickles ``b''`` (an empty array's data) as ``bytes()``."""

    def build(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            _refuse(f'refusing {cls.__name__}({args[0]}): pickled data '
                    'holds bytes, not lengths to allocate')
        return cls(*args)

    return build


_NUMPY_CORE = ('numpy.core.multiarray', 'numpy._core.multiarray')
# Pickled name -> stand-in, for every writer's numpy (1.x: numpy.core).
SAFE_GLOBALS: Dict[str, Callable] = {
    'numpy.dtype': DTypeSpec,
    'numpy.ndarray': ArraySpec,
    **{f'{m}.scalar': numpy_scalar
       for m in _NUMPY_CORE},
    **{f'{m}._reconstruct': reconstruct_array
       for m in _NUMPY_CORE},
    'mmengine.logging.history_buffer.HistoryBuffer': HistoryBufferSpec,
    'builtins.bytes': without_lengths(bytes),
}
STATISTIC_GETATTR: Tuple[str, Callable] = ('builtins.getattr',
                                           statistic_getattr)
# What checkpoints written by mmengine without the hook hold beyond torch's
# defaults: tools/sanitize_checkpoint.py converts files holding only these.
CONVERTIBLE = frozenset(SAFE_GLOBALS) | {STATISTIC_GETATTR[0]}


def rebuild(obj, items: List):
    """``obj``'s container type holding ``items``; ``obj`` itself when
    every item is the same object as before."""
    old = list(obj.values()) if isinstance(obj, dict) else list(obj)
    if all(a is b for a, b in zip(old, items)):
        return obj
    if isinstance(obj, dict):
        cls = OrderedDict if isinstance(obj, OrderedDict) else dict
        return cls(zip(obj.keys(), items))
    if isinstance(obj, tuple):
        return type(obj)(*items) if hasattr(obj, '_fields') else tuple(items)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(items)
    return list(items)


# Deeper than any checkpoint or annotation file nests (a state dict is 2
# levels, mmengine's message hub about 6); a pickle of nested references
# is refused here instead of exhausting the interpreter's stack.
MAX_DEPTH = 100


def resolve(obj, convert: Optional[Callable] = None):
    """``obj`` with every stand-in replaced by the value it rebuilt, and
    every container for which ``convert`` returns a value replaced by it;
    containers holding neither are returned as they are.

    Time and memory are linear in the number of distinct objects: a
    container referenced many times (a pickle's memo makes ``x = [x, x]``
    nested 40 deep a 2 kB file) is visited once and its result shared. A
    cycle, or nesting deeper than :data:`MAX_DEPTH`, is refused with
    ``pickle.UnpicklingError``.
    """
    done: Dict[int, Any] = {}
    active = set()

    def visit(node, depth: int):
        key = id(node)
        if key in done:
            return done[key]
        if isinstance(node, (DTypeSpec, ArraySpec, HistoryBufferSpec)):
            result = node.resolve()
        elif isinstance(node, StatisticRef):
            _refuse(f'refusing HistoryBuffer.{node.name} outside a buffer')
        elif not isinstance(node, (dict, list, tuple, set, frozenset)):
            # Scalars, strings, tensors: nothing inside to rebuild.
            return node
        else:
            if key in active:
                _refuse('refusing a container that holds itself (a '
                        'cyclic pickle): checkpoints and annotations are '
                        'trees of plain data')
            if depth > MAX_DEPTH:
                _refuse(f'refusing data nested deeper than {MAX_DEPTH} '
                        'levels')
            converted = convert(node) if convert is not None else None
            if converted is not None:
                result = converted
            else:
                active.add(key)
                items = node.values() if isinstance(node, dict) else node
                result = rebuild(node, [visit(v, depth + 1) for v in items])
                active.discard(key)
        done[key] = result
        return result

    return visit(obj, 0)
