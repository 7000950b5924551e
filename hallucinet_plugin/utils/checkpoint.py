"""The plugin's one checkpoint loader: state dicts from checkpoints, keys
revised and checked, loaded into modules only when they fit.

Every file (teacher, appearance stream, stage-1 student, MoNet's
classifier, deployment, Hara's 3D-ResNeXt) is read by
:func:`~.checkpoint_sources.read_checkpoint`
(``torch.load(weights_only=True)``),
and every state dict, read or given, is checked by :func:`_state_dict_in`.
"""
import logging
import os
import re
from collections import OrderedDict
from typing import (
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule

# The one safe read, part of this module's API.
from .checkpoint_sources import read_checkpoint  # noqa: F401

StateDict = Mapping[str, torch.Tensor]
Prefixes = Union[str, Sequence[str], Mapping[str, str]]
# Distributed wrappers (DataParallel, DDP) prefix every key with 'module.';
# mmengine's load_checkpoint strips it by the same default.
DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )


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
    checkpoint = read_checkpoint(
        filename, key_name=key_name, what=what, map_location=map_location)
    return state_dict_of(
        checkpoint,
        source=f'{key_name} {os.fspath(filename)}',
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
        checkpoint = read_checkpoint(filename, key_name=key_name, what=what)
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
        if isinstance(sub, BaseModule):
            sub.is_init = True
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
