"""Hara et al.'s 3D-ResNeXt checkpoints as mmengine checkpoints.

The layout of Hara's files, and how raw and converted ones are read, is the
backbone's (``hara_state_dict`` and ``resnext3d_state_dict`` in
``models/backbones/resnext3d.py``); this module checks a file against the
architecture it implies and writes it in mmengine's layout, recording in
``meta`` what it did. Checkpoints are read by the plugin's loader, weights
only: Hara's files hold nothing but tensors and plain containers.
"""
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from ..models.backbones.resnext3d import (
    ResNeXt3D,
    ResNeXtBottleneck3D,
    hara_state_dict,
    resnext3d_state_dict,
)
from ..utils.checkpoint import read_checkpoint

_ARCH_PATTERN = re.compile(r'^resnext-?(\d+)$', re.IGNORECASE)
_LAYER3_BLOCKS = {
    blocks[2]: depth
    for depth, blocks in ResNeXt3D.arch_settings.items()
}
_WHAT = 'a checkpoint of kenshohara/3D-ResNets-PyTorch'


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
    return _read_hara(read_checkpoint(filename, what=_WHAT), filename)


def _read_hara(checkpoint: dict, filename: str) -> Tuple[dict, dict, dict]:
    arch = checkpoint.get('arch')
    state_dict, added = hara_state_dict(checkpoint, filename)
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
    (checked against the architecture it implies) or one written by
    :func:`convert_hara_checkpoint`.

    Args:
        filename (str): Path to the checkpoint.

    Returns:
        dict: Keys as in ``ResNeXt3D.state_dict()``, ``fc.*`` included
        when the file has the classifier.
    """
    checkpoint = read_checkpoint(filename, what=_WHAT)
    meta = checkpoint.get('meta')
    if isinstance(meta, dict) and meta.get('source') == 'hara':
        return resnext3d_state_dict(checkpoint, filename)
    return _read_hara(checkpoint, filename)[0]
