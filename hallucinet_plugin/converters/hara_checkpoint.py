"""Hara et al.'s 3D-ResNeXt checkpoints as mmengine checkpoints.

kenshohara/3D-ResNets-PyTorch saves ``{'arch': 'resnext-101', 'epoch': ...,
'state_dict': ..., 'optimizer': ...}`` from a model wrapped in
``nn.DataParallel``, so every key starts with ``module.``. Stripped of it,
the keys are those of :class:`ResNeXt3D`. Files written by PyTorch < 0.4
(the 2017 Kinetics models) have no BatchNorm ``num_batches_tracked``
buffers; the converter adds them as 0, which only matters for BatchNorm
with ``momentum=None``, and records that it did in ``meta``.

Checkpoints are read with ``torch.load(weights_only=True)`` only: Hara's
files hold nothing but tensors and plain containers.
"""
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from ..models.backbones.resnext3d import ResNeXt3D, ResNeXtBottleneck3D

_ARCH_PATTERN = re.compile(r'^resnext-?(\d+)$', re.IGNORECASE)
_LAYER3_BLOCKS = {
    blocks[2]: depth
    for depth, blocks in ResNeXt3D.arch_settings.items()
}
_BN_COUNTER = 'num_batches_tracked'


def _torch_load(filename: str) -> dict:
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    try:
        checkpoint = torch.load(
            filename, map_location='cpu', weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f'{filename}: torch.load(weights_only=True) failed: {err}\n'
            'Hara checkpoints hold only tensors and plain containers; this '
            'file is either not a PyTorch checkpoint or holds other '
            'objects. It is not retried with weights_only=False, which '
            'would run code stored in the file.') from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename}: expected a dict with a '
                         f"'state_dict' key, got {type(checkpoint).__name__}")
    if 'state_dict' not in checkpoint:
        raise ValueError(f"{filename}: no 'state_dict' key (found keys: "
                         f'{sorted(map(str, checkpoint))})')
    state_dict = checkpoint['state_dict']
    if not isinstance(state_dict, dict) or not state_dict:
        raise ValueError(f"{filename}: 'state_dict' must be a non-empty dict "
                         'of tensors')
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{filename}: 'state_dict' entry {key!r} is "
                             f'not a tensor ({type(value).__name__})')
    return checkpoint


def _strip_module_prefix(state_dict: dict,
                         filename: str) -> 'OrderedDict[str, torch.Tensor]':
    # nn.DataParallel adds 'module.' to every key; a model saved without it
    # (Hara's --no_cuda) has none. A mixture is a corrupt file.
    prefixed = [k.startswith('module.') for k in state_dict]
    if any(prefixed) and not all(prefixed):
        bad = [k for k, p in zip(state_dict, prefixed) if not p][:5]
        raise ValueError(f"{filename}: some keys start with 'module.' and "
                         f'some do not, e.g. {bad}')
    if not any(prefixed):
        return OrderedDict(state_dict)
    return OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())


def _add_num_batches_tracked(state_dict: dict) -> bool:
    if any(k.endswith('.' + _BN_COUNTER) for k in state_dict):
        return False
    for key in list(state_dict):
        if key.endswith('.running_mean'):
            name = key[:-len('running_mean')] + _BN_COUNTER
            state_dict[name] = torch.tensor(0, dtype=torch.long)
    return True


def _require(state_dict: dict, key: str, filename: str) -> torch.Tensor:
    if key not in state_dict:
        raise ValueError(f"{filename}: key '{key}' is missing; not a Hara "
                         '3D-ResNeXt state_dict')
    return state_dict[key]


def infer_depth(state_dict: dict,
                arch: Optional[str] = None,
                filename: str = '<state_dict>') -> int:
    """Depth of a Hara 3D-ResNeXt, from its arch string or else from the
    number of blocks in ``layer3``.

    Args:
        state_dict (dict): Keys without the ``module.`` prefix.
        arch (str, optional): Hara's ``arch`` entry, e.g. ``'resnext-101'``.
        filename (str): Named in error messages.

    Returns:
        int: 50, 101 or 152.
    """
    supported = sorted(ResNeXt3D.arch_settings)
    if arch is not None:
        match = _ARCH_PATTERN.match(str(arch))
        if match is None or int(match.group(1)) not in supported:
            raise ValueError(
                f'{filename}: unknown arch {arch!r}; supported: '
                f"{', '.join(f'resnext-{d}' for d in supported)}")
        return int(match.group(1))
    layer3 = {
        int(k.split('.')[1])
        for k in state_dict
        if k.startswith('layer3.') and k.split('.')[1].isdigit()
    }
    num_blocks = max(layer3) + 1 if layer3 else 0
    if num_blocks not in _LAYER3_BLOCKS:
        raise ValueError(
            f'{filename}: no arch given and layer3 has {num_blocks} blocks, '
            f'which matches no ResNeXt3D depth ({_LAYER3_BLOCKS})')
    return _LAYER3_BLOCKS[num_blocks]


def infer_resnext3d_cfg(state_dict: dict,
                        arch: Optional[str] = None,
                        filename: str = '<state_dict>') -> dict:
    """Constructor arguments of the :class:`ResNeXt3D` a state dict fits.

    Widths are read from tensor shapes, so tiny test models work too.

    Args:
        state_dict (dict): Keys without the ``module.`` prefix.
        arch (str, optional): Hara's ``arch`` entry.
        filename (str): Named in error messages.

    Returns:
        dict: ``depth``, ``cardinality``, ``in_channels``, ``base_planes``,
        ``stem_channels`` and ``num_classes``.
    """
    conv1 = _require(state_dict, 'conv1.weight', filename)
    mid = _require(state_dict, 'layer1.0.conv2.weight', filename)
    out = _require(state_dict, 'layer1.0.conv3.weight', filename)
    fc = state_dict.get('fc.weight')
    if conv1.dim() != 5 or mid.dim() != 5 or out.dim() != 5:
        raise ValueError(f'{filename}: conv1/layer1.0 weights are not 5-D '
                         'Conv3d weights; not a 3D-ResNeXt')
    if mid.shape[0] % mid.shape[1]:
        raise ValueError(f"{filename}: 'layer1.0.conv2.weight' of shape "
                         f'{tuple(mid.shape)} is not a grouped convolution')
    return dict(
        depth=infer_depth(state_dict, arch, filename),
        cardinality=mid.shape[0] // mid.shape[1],
        in_channels=conv1.shape[1],
        base_planes=out.shape[0] // ResNeXtBottleneck3D.expansion,
        stem_channels=conv1.shape[0],
        num_classes=None if fc is None else fc.shape[0])


def check_resnext3d_keys(state_dict: dict,
                         cfg: dict,
                         filename: str = '<state_dict>') -> None:
    """Raise if ``state_dict`` does not match ``ResNeXt3D(**cfg)`` exactly
    (names and shapes).

    The model is built on the ``meta`` device: no memory, no init.
    """
    try:
        with torch.device('meta'):
            model = ResNeXt3D(**cfg)
    except (KeyError, ValueError) as err:
        raise ValueError(f'{filename}: inferred ResNeXt3D({cfg}) is '
                         f'invalid: {err}') from err
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f'{k}: {tuple(state_dict[k].shape)} != {shape}'
        for k, shape in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != shape
    ]
    if missing or unexpected or mismatched:
        lines = [f'{filename} does not match ResNeXt3D({cfg}):']
        for title, items in (('missing keys', missing),
                             ('unexpected keys', unexpected),
                             ('shape mismatches', mismatched)):
            if items:
                shown = ', '.join(items[:10])
                more = f' ... (+{len(items) - 10})' if len(items) > 10 else ''
                lines.append(f'  {len(items)} {title}: {shown}{more}')
        raise ValueError('\n'.join(lines))


def read_hara_checkpoint(filename: str) -> Tuple[dict, dict, dict]:
    """Read and validate a checkpoint saved by Hara's training code.

    Args:
        filename (str): Path to e.g. ``resnext-101-kinetics.pth``.

    Returns:
        tuple: ``(state_dict, cfg, info)``: the state dict with the
        ``module.`` prefix stripped (and BatchNorm counters added for
        PyTorch < 0.4 files), the :class:`ResNeXt3D` arguments it fits, and
        ``arch``, ``epoch`` and ``num_batches_tracked_added``.
    """
    checkpoint = _torch_load(filename)
    arch = checkpoint.get('arch')
    state_dict = _strip_module_prefix(checkpoint['state_dict'], filename)
    added = _add_num_batches_tracked(state_dict)
    cfg = infer_resnext3d_cfg(state_dict, arch, filename)
    check_resnext3d_keys(state_dict, cfg, filename)
    info = dict(
        arch=arch if arch is not None else f"resnext-{cfg['depth']}",
        epoch=checkpoint.get('epoch'),
        num_batches_tracked_added=added)
    return state_dict, cfg, info


def _fc_prefix(prefix: str) -> str:
    # A backbone inside a recognizer: Hara's fc becomes its I3DHead's fc_cls.
    if prefix.endswith('backbone.'):
        return prefix[:-len('backbone.')] + 'cls_head.fc_cls.'
    # A bare ResNeXt3D (or one nested under another name) keeps its own fc.
    return prefix + 'fc.'


def convert_hara_checkpoint(src: str,
                            dst: str,
                            keep_fc: bool = False,
                            prefix: str = 'backbone.') -> dict:
    """Convert a Hara 3D-ResNeXt checkpoint to an mmengine checkpoint.

    Args:
        src (str): Hara checkpoint (``torch.save`` of a dict with ``arch``,
            ``state_dict`` with ``module.`` keys, ``epoch``, ``optimizer``).
        dst (str): Output path; parent directories are created.
        keep_fc (bool): Keep the Kinetics classifier. With a prefix ending
            in ``backbone.`` it goes to ``cls_head.fc_cls.`` (an
            ``I3DHead``), otherwise to ``{prefix}fc.`` (a ``ResNeXt3D`` with
            ``num_classes``).
        prefix (str): Put before every backbone key: ``'backbone.'`` for a
            ``Recognizer3D``, ``''`` for a bare ``ResNeXt3D``.

    Returns:
        dict: The ``meta`` written, including ``resnext3d``, the arguments
        of the matching :class:`ResNeXt3D`.
    """
    if prefix and not prefix.endswith('.'):
        raise ValueError(f"prefix must be '' or end with '.', got {prefix!r}")
    state_dict, cfg, info = read_hara_checkpoint(src)
    fc_prefix = _fc_prefix(prefix) if keep_fc else None
    if keep_fc and cfg['num_classes'] is None:
        raise ValueError(f'{src}: keep_fc was requested but the checkpoint '
                         "has no 'fc.weight'")

    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            if keep_fc:
                converted[fc_prefix + key[len('fc.'):]] = value
            continue
        converted[prefix + key] = value
    if not keep_fc:
        cfg = dict(cfg, num_classes=None)

    meta = dict(
        source='hara',
        src=src,
        arch=info['arch'],
        epoch=info['epoch'],
        resnext3d=cfg,
        prefix=prefix,
        fc_prefix=fc_prefix,
        num_batches_tracked_added=info['num_batches_tracked_added'])
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(dict(state_dict=converted, meta=meta), tmp)
    os.replace(tmp, dst)
    return meta


def load_resnext3d_state_dict(filename: str) -> Dict[str, torch.Tensor]:
    """State dict for a bare :class:`ResNeXt3D` from a raw Hara checkpoint
    or one written by :func:`convert_hara_checkpoint`.

    Args:
        filename (str): Path to the checkpoint.

    Returns:
        dict: Keys as in ``ResNeXt3D.state_dict()``, ``fc.*`` included
        when the file has the classifier.
    """
    checkpoint = _torch_load(filename)
    meta = checkpoint.get('meta')
    if not (isinstance(meta, dict) and meta.get('source') == 'hara'):
        return read_hara_checkpoint(filename)[0]

    prefix = meta.get('prefix')
    fc_prefix = meta.get('fc_prefix')
    if not isinstance(prefix, str) or not isinstance(fc_prefix,
                                                     (str, type(None))):
        raise ValueError(f"{filename}: 'meta' of a converted Hara checkpoint "
                         "needs a str 'prefix' and a str or None 'fc_prefix'")
    state_dict = OrderedDict()
    for key, value in checkpoint['state_dict'].items():
        if fc_prefix is not None and key.startswith(fc_prefix):
            state_dict['fc.' + key[len(fc_prefix):]] = value
        elif key.startswith(prefix):
            state_dict[key[len(prefix):]] = value
        else:
            raise ValueError(f'{filename}: key {key!r} has neither the '
                             f'prefix {prefix!r} nor {fc_prefix!r} recorded '
                             "in 'meta'")
    return state_dict
