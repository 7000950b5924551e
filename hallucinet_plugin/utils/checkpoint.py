"""The plugin's one checkpoint loader, and Runner checkpoints that load with
``torch.load(weights_only=True)``.

Every checkpoint file the plugin reads (teacher, appearance stream, stage-1
student, MoNet's classifier, deployment, Hara's 3D-ResNeXt) goes through
:func:`_read`, and every state dict, read or given, through
:func:`_state_dict_in`: checks of files and of tensors belong there. Local
files and URLs' downloads are read with ``torch.load(weights_only=True)``
(:mod:`.checkpoint_sources`, which also puts such loaders in place of
mmengine's for the plugin's tools). Nothing is ever fully unpickled.

mmengine saves its message hub into every checkpoint: ``HistoryBuffer``
objects holding numpy arrays, numpy scalars, and the buffers' statistics
functions, pickled as ``builtins.getattr(HistoryBuffer, 'min')``; all of them
are refused by ``weights_only`` loading. Nothing here changes torch or
mmengine on import. Instead:

* :func:`to_plain` turns these objects into dicts, tensors and Python
  scalars, and :func:`from_plain` turns them back; the engine's
  ``WeightsOnlyCheckpointHook`` applies them when the Runner saves and loads,
  so its checkpoints load with plain ``torch.load``;
* :func:`mmengine_safe_globals` maps numpy's and mmengine's names to checked
  stand-ins (:mod:`.pickle_data`) only while a checkpoint is read, for files
  written without the hook: only plain numeric dtypes and well-formed
  buffers are rebuilt. ``getattr`` is reached only by
  :func:`sanitize_checkpoint` with ``trust=True``, and then only to
  ``HistoryBuffer``'s four statistics methods.
"""
import contextlib
import logging
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from functools import partial
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, print_log

from .checkpoint_sources import (
    check_expansion,
    diagnosis,
    is_url,
    local_copy,
)
from .pickle_data import (
    PLAIN_KINDS,
    SAFE_GLOBALS,
    STATISTIC_GETATTR,
    history_buffer,
    rebuild,
    resolve,
)

StateDict = Mapping[str, torch.Tensor]
Prefixes = Union[str, Sequence[str], Mapping[str, str]]
# Distributed wrappers (DataParallel, DDP) prefix every key with 'module.';
# mmengine's load_checkpoint strips it by the same default.
DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )
# Lines of torch's weights_only error that suggest weights_only=False.
# Marks the dicts that to_plain writes in place of mmengine's objects.
_PLAIN_TYPE = '__plain_type__'


def _global_name(entry) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


@contextlib.contextmanager
def mmengine_safe_globals(statistics_getattr: bool = False) -> Iterator[None]:
    """Let ``weights_only`` loads rebuild mmengine's checkpoint data, within
    the ``with`` block only.

    numpy's dtype, array and scalar names and ``HistoryBuffer`` unpickle
    into the checked stand-ins of :mod:`.pickle_data` (call
    :func:`~.pickle_data.resolve` on what was loaded); entries that the
    user allowlisted under the same names are set aside meanwhile. The
    allowlist is restored on exit.

    Args:
        statistics_getattr (bool): Also let ``builtins.getattr`` reach
            ``HistoryBuffer``'s default statistics methods, and nothing
            else, as plain mmengine checkpoints need.
    """
    before = torch.serialization.get_safe_globals()
    ours = [(obj, name) for name, obj in SAFE_GLOBALS.items()]
    if statistics_getattr:
        ours.append(STATISTIC_GETATTR[::-1])
    names = {name for _, name in ours}
    kept = [g for g in before if _global_name(g) not in names]
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(kept + ours)
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def _read(filename: str, key_name: str, what: Optional[str],
          map_location) -> dict:
    """Read a checkpoint file, weights only: every file the plugin loads
    comes through here.

    Local files must exist; URLs (``https://``, ``torchvision://`` ...) are
    downloaded once (:func:`~.checkpoint_sources.local_copy`). Either is
    read with ``torch.load(weights_only=True)``. The result must be a dict.
    """
    source = f'{key_name} {filename}'
    if is_url(filename):
        # Network errors keep their own type and message.
        path = local_copy(filename)
    else:
        path = osp.expanduser(filename)
        if not osp.isfile(path):
            hint = f' (set it to {what})' if what else ''
            raise FileNotFoundError(f'{key_name} not found: {filename}{hint}')
    check_expansion(path, source)
    # weights_only passed explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    # overrides only torch's default.
    load = partial(
        torch.load, path, map_location=map_location, weights_only=True)
    with mmengine_safe_globals():
        try:
            checkpoint = resolve(load())
        except Exception as err:
            raise RuntimeError(
                f'{source}: torch.load(weights_only=True) failed: '
                f'{diagnosis(err)}\n'
                'It is not retried with weights_only=False, which would run '
                'code stored in the file. For a checkpoint you wrote '
                'yourself, see tools/sanitize_checkpoint.py.') from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source}: not a checkpoint: it holds a '
                         f'{type(checkpoint).__name__}, not a dict')
    return checkpoint


def _state_dict_in(checkpoint, source: str) -> StateDict:
    """The state dict of a checkpoint: its ``'state_dict'`` entry, or the
    checkpoint itself when it is one; the one place every state dict, from
    a file or not, is checked. Anything else is refused."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source}: not a checkpoint: it holds a '
                         f'{type(checkpoint).__name__}, not a dict')
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f"{source}: 'state_dict' holds a "
                         f'{type(state).__name__}, not a dict of tensors')
    bad = [
        key for key, value in state.items()
        if not isinstance(key, str) or not isinstance(value, torch.Tensor)
    ]
    if bad and state is checkpoint:
        raise ValueError(
            f"{source}: no 'state_dict' key (found keys: "
            f'{sorted(map(str, checkpoint))[:10]}) and not a state dict '
            f'itself: {bad[0]!r} holds a {type(state[bad[0]]).__name__}')
    if bad:
        raise ValueError(
            f"{source}: 'state_dict' entry {bad[0]!r} is not a tensor "
            f'({type(state[bad[0]]).__name__})')
    if not state:
        raise ValueError(f'{source}: the state dict is empty')
    return state


def _top_names(state: StateDict) -> List[str]:
    return sorted({key.split('.')[0] + '.' for key in state})


def state_dict_of(checkpoint: Mapping,
                  *,
                  source: str = 'the state dict',
                  prefix: Optional[str] = None,
                  revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
                  ) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict of a checkpoint already read, keys revised.

    Args:
        checkpoint (Mapping): A checkpoint (``{'state_dict': ..., ...}``) or
            a state dict.
        source (str): Names the checkpoint in error messages.
        prefix (str, optional): Keep only the keys under this prefix (a
            submodule's name and ``.``), stripped of it.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)``
            regular expressions applied in turn to every key, as in
            mmengine's ``load_checkpoint``; by default ``module.`` goes.

    Returns:
        OrderedDict[str, Tensor]: The tensors, in the checkpoint's order.
    """
    revised: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    original = {}
    for key, value in _state_dict_in(checkpoint, source).items():
        new = key
        for pattern, replacement in revise_keys:
            new = re.sub(pattern, replacement, new)
        if new in revised:
            raise ValueError(f'{source}: keys {original[new]!r} and '
                             f'{key!r} both become {new!r}')
        original[new] = key
        revised[new] = value
    if not prefix:
        return revised
    part = OrderedDict((key[len(prefix):], value)
                       for key, value in revised.items()
                       if key.startswith(prefix))
    if not part:
        raise KeyError(f'{source} has no tensor under {prefix!r} (it has '
                       f'{_top_names(revised)})')
    return part


def read_checkpoint(filename: Union[str, os.PathLike],
                    *,
                    key_name: str = 'checkpoint',
                    what: Optional[str] = None,
                    map_location='cpu') -> dict:
    """A whole checkpoint (``state_dict``, ``meta`` ...), weights only.

    Args:
        filename (str | PathLike): A local path or a URL.
        key_name (str): The config key or argument that gave it, for the
            error messages (``'teacher_ckpt'``).
        what (str, optional): What it should be, for the error when a
            local file does not exist.
        map_location: As for ``torch.load``.

    Returns:
        dict: The checkpoint, as saved; :func:`state_dict_of` gives its
        state dict.
    """
    return _read(os.fspath(filename), key_name, what, map_location)


def load_state_dict_from(filename: Union[str, os.PathLike],
                         *,
                         key_name: str = 'checkpoint',
                         what: Optional[str] = None,
                         prefix: Optional[str] = None,
                         revise_keys: Sequence[Tuple[
                             str, str]] = DEFAULT_REVISE_KEYS,
                         map_location='cpu'
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict of a checkpoint file, weights only.

    Args:
        filename (str | PathLike): A local path or a URL.
        key_name (str): See :func:`read_checkpoint`.
        what (str, optional): See :func:`read_checkpoint`.
        prefix (str, optional): See :func:`state_dict_of`.
        revise_keys (Sequence[tuple[str, str]]): See :func:`state_dict_of`.
        map_location: As for ``torch.load``.

    Returns:
        OrderedDict[str, Tensor]: The tensors, keys revised.
    """
    filename = os.fspath(filename)
    return state_dict_of(
        _read(filename, key_name, what, map_location),
        source=f'{key_name} {filename}',
        prefix=prefix,
        revise_keys=revise_keys)


def prefix_mapping(prefixes: Prefixes) -> Dict[str, str]:
    """``{checkpoint prefix: module prefix}`` from the accepted forms.

    Args:
        prefixes (str | Sequence[str] | Mapping[str, str]): Submodule
            prefixes ending with ``.`` (``''`` for everything), named alike
            in the checkpoint and the module, or a mapping for parts that
            moved.

    Returns:
        dict[str, str]: The mapping.
    """
    if isinstance(prefixes, str):
        prefixes = (prefixes, )
    if isinstance(prefixes, Mapping):
        mapping = dict(prefixes)
    else:
        mapping = {p: p for p in prefixes}
    if not mapping:
        raise ValueError('prefixes is empty: name the parts to load, e.g. '
                         "('backbone.', 'hallu_head.')")
    for src, dst in mapping.items():
        for prefix in (src, dst):
            if not isinstance(prefix, str) or (prefix
                                               and not prefix.endswith('.')):
                raise ValueError(
                    f"prefix {prefix!r} must be '' or a string ending with "
                    "\".\" (a submodule's name, e.g. 'backbone.')")
    return mapping


def _shapes(key: str, saved: torch.Tensor, own: torch.Tensor) -> str:
    return (f'{key}: {tuple(saved.shape)} in the checkpoint, '
            f'{tuple(own.shape)} in the model')


def load_checkpoint_into(
        module: nn.Module,
        checkpoint: Union[str, os.PathLike, StateDict],
        *,
        prefixes: Prefixes = '',
        key_name: str = 'checkpoint',
        what: Optional[str] = None,
        convert: Optional[Callable[[dict, str], StateDict]] = None,
        exclude: Sequence[str] = (),
        optional: Sequence[str] = (),
        max_missing: Optional[int] = 0,
        allow_unexpected: bool = False,
        revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
) -> Dict[str, List[str]]:
    """Load a checkpoint into a module, after checking that it fits.

    Everything is checked before anything is loaded: on an error the
    module is unchanged. Shape mismatches are always refused. Each loaded
    part that is an mmengine ``BaseModule`` is marked initialised, so a
    later ``init_weights()`` keeps its weights.

    Args:
        module (nn.Module): The receiving module (not wrapped).
        checkpoint (str | PathLike | Mapping[str, Tensor]): A checkpoint
            file or URL, read by :func:`read_checkpoint`, or a state dict.
        prefixes (str | Sequence[str] | Mapping[str, str]): The parts to
            load, see :func:`prefix_mapping`; ``''``: all of the module.
        key_name (str): The config key that gave the file, for messages.
        what (str, optional): What the file should be, for the error when
            it does not exist.
        convert (Callable, optional): ``convert(checkpoint, source)`` turns
            a file's checkpoint of another layout into a state dict.
        exclude (Sequence[str]): Checkpoint key prefixes to leave out
            (keys as revised), e.g. ``('teacher.', )``.
        optional (Sequence[str]): Module key prefixes of parts that need
            not come from the checkpoint: loaded when it has them in the
            same shape, else left as they are.
        max_missing (int, optional): Module tensors (outside ``optional``)
            the checkpoint may lack; ``None``: any number.
        allow_unexpected (bool): Accept checkpoint tensors, under the
            prefixes, that the module lacks.
        revise_keys (Sequence[tuple[str, str]]): See :func:`state_dict_of`.

    Returns:
        dict[str, list[str]]: Per module prefix, the module keys loaded.

    Raises:
        KeyError: A part is absent from the checkpoint or the module, or
            more tensors are missing or unexpected than allowed.
        ValueError: Tensors of the same name differ in shape.
    """
    mapping = prefix_mapping(prefixes)
    if isinstance(checkpoint, Mapping):
        source = 'the state dict'
    else:
        filename = os.fspath(checkpoint)
        source = f'{key_name} {filename}'
        checkpoint = _read(filename, key_name, what, 'cpu')
        if convert is not None:
            checkpoint = convert(checkpoint, filename)
    state = state_dict_of(checkpoint, source=source, revise_keys=revise_keys)
    exclude, optional = tuple(exclude), tuple(optional)
    if exclude:
        state = {k: v for k, v in state.items() if not k.startswith(exclude)}
    own = module.state_dict()
    target = f'the {type(module).__name__}'
    plan, problems = [], []
    missing_all, unexpected_all, skipped = [], [], []
    for src, dst in mapping.items():
        part = {k[len(src):]: v for k, v in state.items() if k.startswith(src)}
        mine = {k[len(dst):]: k for k in own if k.startswith(dst)}
        label = f'{dst[:-1]} ' if dst else ''
        if not mine:
            raise KeyError(f'{target} has no tensor under {dst!r}; is the '
                           'part configured (e.g. hallu_head)?')
        if not part:
            raise KeyError(
                f'{source} does not fit {target}: it lacks {len(mine)} of '
                f'the {len(mine)} {label}tensors; it has no tensor under '
                f'{src!r} (it has {_top_names(state)})')
        try:
            sub = module.get_submodule(dst[:-1]) if dst else module
        except AttributeError as err:
            raise KeyError(f'{dst!r} is not a submodule of {target}') from err
        other_shape = [
            name for name, key in mine.items()
            if name in part and part[name].shape != own[key].shape
        ]
        mismatched = [
            _shapes(mine[name], part[name], own[mine[name]])
            for name in other_shape if not mine[name].startswith(optional)
        ]
        if mismatched:
            raise ValueError(
                f'{source} does not fit {target}: {len(mismatched)} tensors '
                f'of other shapes (e.g. {mismatched[:3]}); is it the same '
                'architecture?')
        missing = [
            key for name, key in mine.items()
            if name not in part and not key.startswith(optional)
        ]
        unexpected = [src + name for name in part if name not in mine]
        if missing:
            problems.append(
                f'it lacks {len(missing)} of the {len(mine)} {label}tensors '
                f'(missing keys, e.g. {missing[:5]})')
        if unexpected:
            problems.append(
                f'it has {len(unexpected)} {label}tensors the model lacks '
                f'(unexpected keys, e.g. {unexpected[:5]})')
        missing_all += missing
        unexpected_all += unexpected
        skipped += [mine[name] for name in other_shape]
        plan.append((dst, sub, {
            name: part[name]
            for name in mine if name in part and name not in other_shape
        }))
    if ((max_missing is not None and len(missing_all) > max_missing)
            or (unexpected_all and not allow_unexpected)):
        raise KeyError(f'{source} does not fit {target}: ' +
                       '; '.join(problems) + '; is it the same architecture?')
    loaded = {}
    for dst, sub, part in plan:
        sub.load_state_dict(part, strict=False)
        if hasattr(sub, '_is_init'):
            sub._is_init = True
        loaded[dst] = [dst + name for name in part]
    counts = ', '.join(
        f'{len(keys)} tensors' + (f' under {dst!r}' if dst else '')
        for dst, keys in loaded.items())
    print_log(f'{source}: loaded {counts} into {target}', logger='current')
    if missing_all or skipped or unexpected_all:
        print_log(
            f'{source}: {target} keeps its own {missing_all + skipped}; '
            f'ignored {unexpected_all}',
            logger='current',
            level=logging.WARNING)
    return loaded


# --------------------------------------------------------------- plain data
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
            return {
                _PLAIN_TYPE: 'ndarray',
                'data': torch.from_numpy(obj.copy())
            }
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
    back from their dicts (checked like the pickled ones), and the
    stand-ins of :mod:`.pickle_data` resolved; containers holding neither
    are returned as they are."""
    return resolve(obj, _from_plain_dict)


def unsafe_globals(filename: str) -> List[str]:
    """Globals in a checkpoint that the plugin's ``weights_only`` loading
    refuses: those beyond torch's defaults and mmengine's data types."""
    with mmengine_safe_globals():
        return torch.serialization.get_unsafe_globals_in_checkpoint(filename)


def sanitize_checkpoint(filename: str,
                        out: Optional[str] = None,
                        trust: bool = False) -> str:
    """Rewrite a checkpoint so that plain ``torch.load`` (``weights_only``)
    can load it, message hub included (see :func:`to_plain`).

    Nothing is ever fully unpickled. A file holding only mmengine's data
    types is read as :func:`read_checkpoint` reads it. Plain mmengine
    checkpoints also hold ``getattr(HistoryBuffer, 'min')`` and its like:
    with ``trust=True``, ``builtins.getattr`` is accepted as the one extra
    global, and it reaches only those four statistics methods. Any other
    global is refused, with or without ``trust``.

    Args:
        filename (str): The checkpoint to rewrite.
        out (str, optional): Where to write; defaults to ``filename``.
        trust (bool): Accept ``builtins.getattr`` (checkpoints written by
            mmengine without ``WeightsOnlyCheckpointHook``).

    Returns:
        str: The path written.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    foreign = unsafe_globals(filename)
    beyond = [name for name in foreign if name != 'builtins.getattr']
    if beyond:
        raise PermissionError(
            f'{filename} holds {beyond}, which no checkpoint of mmengine or '
            'the plugin needs: refused, with or without trust')
    if foreign and not trust:
        raise PermissionError(
            f'{filename} holds {foreign}: rewriting it resolves getattr to '
            "HistoryBuffer's statistics methods only. Pass trust=True "
            '(--trust) for checkpoints you wrote yourself with mmengine.')
    with mmengine_safe_globals(statistics_getattr=bool(foreign)):
        try:
            checkpoint = resolve(
                torch.load(filename, map_location='cpu', weights_only=True))
        except (pickle.UnpicklingError, RuntimeError, ValueError) as err:
            raise RuntimeError(f'{filename}: {diagnosis(err)}') from None
    out = out or filename
    tmp = out + '.tmp'
    torch.save(to_plain(checkpoint), tmp)
    os.replace(tmp, out)
    remaining = torch.serialization.get_unsafe_globals_in_checkpoint(out)
    if remaining:
        raise RuntimeError(f'{out} still holds globals that weights_only '
                           f'loading refuses: {remaining}')
    return out
