"""A teacher named in a ``model.hallucination`` section: its config file
found the same way under every tool, adjusted with dotted-key overrides,
and the clip geometry it declares."""
import os.path as osp
from typing import Dict, Optional

import mmaction
from mmengine.config import Config

from ...utils.config import to_builtin


def resolve_config_path(path: str, relative_to: Optional[str] = None) -> str:
    """A config file named by path or ``mmaction::`` (mmaction2's packaged
    configs, read without mmengine's metafile lookup, which fails on
    mmaction2 1.1.0).

    A relative path is looked up next to ``relative_to`` (the config file
    that names it) first, then in the working directory.
    """
    if path.startswith('mmaction::'):
        root = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')
        resolved = osp.join(root, path[len('mmaction::'):])
    elif relative_to and not osp.isabs(path) and osp.isfile(
            osp.join(osp.dirname(relative_to), path)):
        resolved = osp.join(osp.dirname(relative_to), path)
    else:
        resolved = path
    if not osp.isfile(resolved):
        tried = [resolved]
        if relative_to and not osp.isabs(path) \
                and not path.startswith('mmaction::'):
            tried.insert(0, osp.join(osp.dirname(relative_to), path))
        tried = list(dict.fromkeys(tried))
        raise FileNotFoundError(
            f"config not found: {path} (tried {', '.join(tried)}; a "
            'relative path is read next to the config file that names it, '
            'then in the working directory)')
    return resolved


def merge_cfg_options(cfg: Config, options: Dict, key: str) -> None:
    """Merge dotted-key ``options`` onto ``cfg`` as mmengine's
    ``--cfg-options`` do, in place, refusing a key whose parent is not in
    ``cfg`` (a typo would otherwise add a key nothing reads).

    Args:
        cfg (Config): The teacher's config (``model`` at its root).
        options (dict): ``{'model.backbone.img_size': 64, ...}``.
        key (str): The config key ``options`` came from, for messages.
    """
    if not isinstance(options, dict):
        raise TypeError(f'{key} must be a dict of dotted keys, got '
                        f'{type(options).__name__}')
    tree = cfg.to_dict()
    options = dict(options)
    for name, value in options.items():
        node = tree
        parts = str(name).split('.')
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, (list, tuple)) and part.isdigit() \
                    and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise KeyError(
                    f"{key}['{name}']: the teacher config has no "
                    f"{'.'.join(parts[:depth + 1])!r} to set "
                    f'{parts[-1]!r} in (keys start at the config root, '
                    "e.g. 'model.backbone.img_size')")
        if isinstance(value, dict) and isinstance(node, dict) \
                and not isinstance(node.get(parts[-1]), dict):
            # A dict replacing a name (Swin's arch='tiny' by its parts).
            options[name] = dict(value, _delete_=True)
    cfg.merge_from_dict(options)


def declared_clip(cfg: Config) -> Dict:
    """The clip a teacher config's test pipeline gives its model:
    ``clip_len``, ``frame_interval`` and the crop ``size``, those found.

    Args:
        cfg (Config): A recognition config file's contents.

    Returns:
        dict: Empty when the config has no test pipeline.
    """
    pipeline = cfg.get('test_pipeline') or cfg.get('val_pipeline') or []
    found = {}
    for step in to_builtin(pipeline):
        kind = step.get('type')
        if kind in ('SampleFrames', 'UniformSample') and \
                'clip_len' not in found:
            found['clip_len'] = step.get('clip_len')
            if kind == 'SampleFrames':
                found['frame_interval'] = step.get('frame_interval', 1)
        elif kind in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            size = step.get('crop_size')
            found['size'] = (size, size) if isinstance(size, int) else \
                tuple(size)
    return found
