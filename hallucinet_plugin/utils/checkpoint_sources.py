"""Checkpoint files, local or by URL, read weights only: the plugin's one
safe read, :func:`read_checkpoint`, which :func:`use_safe_checkpoint_loaders`
also puts in place of mmengine's loaders (they read URLs, and local files
under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, by full unpickling). A
checkpoint holding mmengine's or numpy's objects is refused, naming
``tools/sanitize_checkpoint.py``, which converts it once.
"""
import contextlib
import hashlib
import os
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from typing import (
    Callable,
    Dict,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Union,
)
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mmengine_checkpoint

from .pickle_data import CONVERTIBLE, resolve

_HTTP = ('http://', 'https://')
# The lines of torch's weights_only error that advise unpickling fully.
_ADVICE = ('Weights only load failed', '(1)', '(2)', 'Check the documentation')
# torch.hub's check_hash convention, which OpenMMLab's model zoo follows
# (``..._20220901-2132fc87.pth``): the name ends in a prefix of the file's
# SHA-256, so every URL with that name must serve the same bytes.
_HASH_IN_NAME = re.compile(r'-([a-f0-9]{8,64})\.[^./]+$')


def _named(filename: str, prefixes, models: Callable[[], Dict]) -> str:
    """The URL of a ``scheme://name`` checkpoint, as mmengine lists it."""
    prefix = next(p for p in prefixes if filename.startswith(p))
    name = filename[len(prefix):]
    urls = models()
    if name not in urls:
        raise KeyError(f'{filename}: no model {name!r} under {prefix} '
                       f'(mmengine knows {len(urls)} names)')
    return urls[name]


def _openmmlab(filename: str) -> str:
    prefixes = ('open-mmlab://', 'openmmlab://')
    prefix = next(p for p in prefixes if filename.startswith(p))
    name = filename[len(prefix):]
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    return _named(prefix + name, prefixes,
                  mmengine_checkpoint.get_external_models)


# scheme prefixes -> resolver of the URL
_RESOLVERS = {
    _HTTP: lambda f: f,
    ('torchvision://', 'modelzoo://'): lambda f: _named(
        f, ('torchvision://', 'modelzoo://'),
        mmengine_checkpoint.get_torchvision_models),
    ('open-mmlab://', 'openmmlab://'): _openmmlab,
    ('mmcls://', ): lambda f: _named(f, ('mmcls://', ),
                                     mmengine_checkpoint.get_mmcls_models),
}


# How many times its size a checkpoint may expand to when read. torch
# stores tensors uncompressed (about 1x); a compressed zip of zeros expands
# 1000x. Raise it for a checkpoint you trust that is compressed.
MAX_EXPANSION = float(os.environ.get('HALLUCINET_MAX_CHECKPOINT_EXPANSION',
                                     100))


def check_expansion(path: str, name: str) -> None:
    """Refuse a checkpoint whose zip entries expand to more than
    :data:`MAX_EXPANSION` times the file (checked from the zip's directory,
    before anything is decompressed). Legacy (non-zip) files pass.

    Raises:
        ValueError: Naming ``name`` and the sizes.
    """
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f'{name}: damaged checkpoint zip ({err})') from err
    size = max(osp.getsize(path), 1)
    if expanded > MAX_EXPANSION * size and expanded > 1 << 20:
        raise ValueError(
            f'{name}: its {size} bytes expand to {expanded} when read, '
            f'more than {MAX_EXPANSION:g}x (torch stores tensors '
            'uncompressed); refused. For a compressed checkpoint you '
            'trust, raise HALLUCINET_MAX_CHECKPOINT_EXPANSION')


def diagnosis(err: Exception) -> str:
    """What torch found in the file, without its advice to retry with full
    unpickling, which the plugin never does."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [
        line.split('WeightsUnpickler error:')[-1].strip() for line in lines
        if not line.startswith(_ADVICE)
    ]
    kept = [line for line in kept if line]
    return ' '.join(kept) or str(err).strip() or type(err).__name__


def is_url(filename: str) -> bool:
    """Whether ``filename`` names a checkpoint by URL or scheme."""
    return any(filename.startswith(p) for ps in _RESOLVERS for p in ps)


def cache_name(url: str) -> tuple:
    """``(file name in the cache, SHA-256 prefix to check or None)`` of a
    checkpoint URL.

    A name that carries a hash (torch.hub's ``name-<sha256 prefix>.ext``)
    is its own key: the download is checked against it, so any URL with
    that name holds the same bytes. Any other name is prefixed with a hash
    of the whole URL: ``.../runA/epoch_20.pth`` and ``.../runB/
    epoch_20.pth`` are two files.

    Raises:
        ValueError: A URL that names no file (it ends in ``/``, or has no
            path).
    """
    name = osp.basename(urlparse(url).path)
    if not name or name in ('.', '..'):
        raise ValueError(f'{url}: names no checkpoint file (the path must '
                         'end in a file name); nothing was downloaded')
    match = _HASH_IN_NAME.search(name)
    if match:
        return name, match.group(1)
    key = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return f'{key}-url-{name}', None


def local_copy(filename: str, model_dir: Optional[str] = None) -> str:
    """A local file holding the checkpoint named by URL or scheme: the
    download in torch's hub cache (``$TORCH_HOME/hub/checkpoints``, under
    :func:`cache_name`), fetched once by local rank 0.

    Raises:
        ValueError: A scheme the plugin does not read safely, or a URL
            that names no file (or a path: not downloaded).
        RuntimeError: A download whose SHA-256 does not start with the
            hash in its name (nothing is kept).
    """
    resolver = next(
        (r for ps, r in _RESOLVERS.items() if filename.startswith(ps)), None)
    if resolver is None:
        raise ValueError(
            f'{filename}: the plugin reads checkpoints from local files and '
            f'{sorted(p for ps in _RESOLVERS for p in ps)} only; download '
            'it and give the file')
    url = resolver(filename)
    if not url.startswith(_HTTP):
        raise ValueError(f'{filename}: mmengine names {url}, not a URL; '
                         'give the file itself')
    name, hash_prefix = cache_name(url)
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(model_dir, name)
    rank, _ = get_dist_info()
    local_rank = int(os.environ.get('LOCAL_RANK', rank))
    if local_rank == 0 and not osp.isfile(path):
        os.makedirs(model_dir, exist_ok=True)
        # torch.hub writes a temporary file, checks the hash and removes
        # the file on any failure: nothing half-written is left or reused.
        try:
            torch.hub.download_url_to_file(
                url, path, hash_prefix=hash_prefix, progress=False)
        except RuntimeError as err:
            if 'invalid hash value' in str(err):
                raise RuntimeError(
                    f'{url}: the download does not match the SHA-256 prefix '
                    f'{hash_prefix} in its name; not kept') from err
            raise
    if not osp.isfile(path):
        # Other local ranks: wait for rank 0's download.
        torch.distributed.barrier()
    return path


def _name(entry) -> str:
    if isinstance(entry, tuple):  # (object, pickled name)
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


@contextlib.contextmanager
def allowlist(extra: Sequence = ()) -> Iterator[None]:
    """Within the block, torch's ``weights_only`` allowlist holds ``extra``
    and none of the user's entries for :data:`~.pickle_data.CONVERTIBLE`
    names (allowlisting ``numpy.dtype`` or ``HistoryBuffer`` themselves is
    not memory-safe, see :mod:`.pickle_data`); restored on exit."""
    before = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(
        [g for g in before if _name(g) not in CONVERTIBLE] + list(extra))
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def _conversion_hint(path: str) -> str:
    """How to convert a file refused only for mmengine's objects."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: no hint
        return ''
    if not found or not set(found) <= CONVERTIBLE:
        return ''
    trust = ' --trust' if 'builtins.getattr' in found else ''
    return (f'\nIt holds mmengine/numpy objects ({", ".join(found)}), as '
            'checkpoints written without WeightsOnlyCheckpointHook do. If '
            'you trust the file, convert it once: python '
            f'tools/sanitize_checkpoint.py {path} OUT{trust}')


def read_checkpoint(filename: Union[str, os.PathLike],
                    *,
                    key_name: str = 'checkpoint',
                    what: Optional[str] = None,
                    map_location='cpu') -> dict:
    """A whole checkpoint (``state_dict``, ``meta`` ...), read with
    ``torch.load(weights_only=True)``: every checkpoint the plugin reads,
    and mmengine's under :func:`use_safe_checkpoint_loaders`, comes here.

    Args:
        filename (str | PathLike): A local path or a URL (``https://``,
            ``torchvision://`` ...), downloaded once (:func:`local_copy`).
        key_name (str): The config key or argument that gave it, for the
            error messages (``'teacher_ckpt'``).
        what (str, optional): What it should be, for the error when a
            local file does not exist.
        map_location: As for ``torch.load``.

    Returns:
        dict: The checkpoint, as saved. A file weights-only loading refuses
        is never retried without it; the error names the file.
    """
    filename = os.fspath(filename)
    source = f'{key_name} {filename}'
    path = local_copy(filename) if is_url(filename) else \
        osp.expanduser(filename)
    if not osp.isfile(path):
        hint = f' (set it to {what})' if what else ''
        raise FileNotFoundError(f'{key_name} not found: {filename}{hint}')
    check_expansion(path, source)
    try:
        # weights_only passed explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
        # overrides only torch's default. resolve() refuses cycles and deep
        # nesting, in time linear in the file.
        with allowlist():
            checkpoint = resolve(
                torch.load(path, map_location=map_location,
                           weights_only=True))
    except Exception as err:
        # Not chained: a traceback would print torch's advice to load the
        # file with weights_only=False.
        raise RuntimeError(
            f'{source}: torch.load(weights_only=True) failed: '
            f'{diagnosis(err)}\nIt is not retried with weights_only '
            'disabled, which would run code stored in the file.' +
            _conversion_hint(path)) from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source}: not a checkpoint: it holds a '
                         f'{type(checkpoint).__name__}, not a dict')
    return checkpoint


def _mmengine_loader(filename: str, map_location=None) -> dict:
    checkpoint = read_checkpoint(filename, map_location=map_location)
    if filename.startswith('mmcls://'):
        # An mmcls classifier's backbone, as mmengine's own loader gives it.
        state = checkpoint.get('state_dict', checkpoint)
        checkpoint = dict(state_dict=OrderedDict(
            (k[len('backbone.'):], v) for k, v in state.items()
            if k.startswith('backbone.')))
    return checkpoint


def use_safe_checkpoint_loaders() -> None:
    """Route mmengine's ``load_checkpoint`` (``load_from``, ``resume``,
    ``init_cfg=dict(type='Pretrained')``, backbones' ``pretrained``) for
    local files and every URL scheme through :func:`read_checkpoint`.

    Called by ``tools/train.py``, ``tools/test.py`` and
    ``tools/extract_teacher_features.py``; call it in a script of your own
    for the same guarantee. Idempotent.
    """
    for prefixes in ('', ) + tuple(_RESOLVERS):
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=_mmengine_loader, force=True)
