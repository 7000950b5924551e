"""What a config's deploy model takes: the test pipeline's frames, views
and size (and the teacher's clips, for the benchmark)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..utils.config import config_name

# Samplers of 2D test pipelines -> how many frames one prediction sees.
_SAMPLERS = ('HalluSampleFrames', 'SampleFrames', 'DenseSampleFrames',
             'UniformSample', 'UniformSampleFrames')


_CROP_VIEWS = dict(ThreeCrop=3, TenCrop=10)


# ------------------------------------------------------------------ configs
def without_pretrained(cfg: Dict) -> Dict:
    """A copy of a model config that downloads and loads no weights.

    ``pretrained=True`` (timm, torchvision) becomes ``False``, a
    ``pretrained`` path or URL (mmaction2 backbones) ``None``, and
    ``init_cfg`` of type ``Pretrained`` is dropped. Cost and the exported
    graph do not depend on the weights.
    """

    def strip(obj):
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                if key == 'pretrained':
                    value = False if isinstance(value, bool) else None
                elif key == 'init_cfg' and isinstance(value, dict) \
                        and value.get('type') == 'Pretrained':
                    continue
                out[key] = strip(value)
            return out
        if isinstance(obj, (list, tuple)):
            return type(obj)(strip(v) for v in obj)
        return obj

    return strip(copy.deepcopy(dict(cfg)))


def get_test_pipeline(cfg: Config) -> List[Dict]:
    """The test pipeline: ``test_dataloader.dataset.pipeline``, else the
    ``test_pipeline`` variable (derived configs override the former)."""
    loader = cfg.get('test_dataloader', None) or {}
    pipeline = (loader.get('dataset', None) or {}).get('pipeline', None)
    if pipeline is None:
        pipeline = cfg.get('test_pipeline', None)
    if pipeline is None:
        raise KeyError(f'config {config_name(cfg)} has neither '
                       'test_dataloader.dataset.pipeline nor test_pipeline')
    return [dict(t) for t in pipeline]


def _size_of(value, key: str) -> Tuple[int, int]:
    """``(h, w)`` from an mmaction2 ``int`` or ``(w, h)`` size."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[1]), int(value[0])
    raise ValueError(f'cannot read a size from {key}={value!r}')


def student_input_spec(cfg: Config) -> Dict:
    """What one prediction of the student sees, from the test pipeline.

    Returns:
        dict: ``num_frames`` (views x segments x frames per segment),
        ``num_segments`` (segments x views, mmaction2's ``num_segs``) and
        ``size``: ``(h, w)``, or ``None`` when the pipeline keeps the
        decoded size (no fixed ``Resize`` or crop).
    """
    pipeline = get_test_pipeline(cfg)
    frames = segments = None
    views = 1
    size = None
    for t in pipeline:
        kind = t.get('type')
        if kind == 'HalluSampleFrames':
            segments = t.get('num_segments', 1)
            frames = segments * len(t.get('student_offsets', (0, )))
        elif kind in _SAMPLERS:
            segments = t.get('num_clips', 1) * (2 if t.get('twice_sample')
                                                 else 1)
            frames = segments * t.get('clip_len', 1)
        elif kind == 'Resize':
            scale = t.get('scale')
            if t.get('keep_ratio', True) or scale is None \
                    or min(_size_of(scale, 'Resize.scale')) <= 0:
                size = None
            else:
                size = _size_of(scale, 'Resize.scale')
        elif kind in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            size = _size_of(t.get('crop_size'), f'{kind}.crop_size')
            views *= _CROP_VIEWS.get(kind, 1)
    if frames is None:
        raise ValueError(
            f'cannot tell how many frames one prediction sees: the test '
            f'pipeline of {config_name(cfg)} has none of the samplers '
            f'{_SAMPLERS}')
    return dict(
        num_frames=frames * views, num_segments=segments * views, size=size)


def teacher_input_spec(cfg: Config) -> Optional[Tuple[int, int, int]]:
    """``(T, H, W)`` of one teacher clip from the train pipeline's
    ``HalluSampleFrames.clip_len`` and ``HalluSplitViews.teacher_scale``;
    ``None`` when the pipeline does not say (also when the teacher view
    keeps the shared, possibly random, crop size: ``teacher_scale=None``).
    """
    loader = cfg.get('train_dataloader', None) or {}
    pipeline = (loader.get('dataset', None) or {}).get('pipeline', None) \
        or cfg.get('train_pipeline', None) or []
    clip_len = scale = None
    for t in pipeline:
        if t.get('type') == 'HalluSampleFrames':
            clip_len = t.get('clip_len', 16)
        elif t.get('type') == 'HalluSplitViews':
            scale = t.get('teacher_scale', (112, 112))
    if clip_len is None or scale is None:
        return None
    h, w = _size_of(scale, 'HalluSplitViews.teacher_scale')
    return clip_len, h, w


def resolve_size(cfg: Config,
                 size: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """``(h, w)`` of the student frames: ``size`` (one or two ints) when
    given, else the test pipeline's fixed size."""
    if size is not None:
        size = [int(s) for s in size]
        if len(size) not in (1, 2) or min(size) <= 0:
            raise ValueError(f'a size is one or two positive ints (H W), '
                             f'got {size}')
        return (size[0], size[-1])
    spec_size = student_input_spec(cfg)['size']
    if spec_size is None:
        raise ValueError(
            f'the test pipeline of {config_name(cfg)} keeps the decoded frame '
            'size (no fixed Resize or crop): give the student size '
            'explicitly (--student-size H [W])')
    return spec_size
