"""Config switching: what a config's bank holds (:func:`bank_settings`)
and an online-teacher config turned into its bank variant
(:func:`use_teacher_bank`)."""
import copy
import hashlib
import inspect
import json
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmaction.registry import MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from ..utils.config import (
    innermost_dataset,
    load_config,
    pipeline_datasets,
    to_builtin,
)
from ..utils.typing_utils import PathLike
from .bank_format import DTYPES, FORMAT, FORMAT_VERSION, IDENTITY_KEYS
from .geometry import default_stride
from .store import FeatureBank, _check_compatible, _jsonable

_DETERMINISTIC = ('Resize', 'CenterCrop')
# Random crops become the centre crop of their output size (the view the
# test pipelines use); flips are dropped.
_RANDOM_TO_DETERMINISTIC = {
    'RandomCrop': lambda t: dict(type='CenterCrop', crop_size=t['size']),
    'MultiScaleCrop': lambda t: dict(
        type='CenterCrop', crop_size=t['input_size']),
    'Flip': lambda t: None,
}

def teacher_args(model_cfg: Dict, where: str = 'config') -> Dict:
    """``model.teacher`` of a HalluciNet config (a ``FrozenTeacher``
    dict) with the teacher's defaults filled in: ``model``,
    ``checkpoint``, ``layer``, ``pool``, ``max_missing_keys``."""
    teacher = model_cfg.get('teacher')
    if teacher is None:
        raise ValueError(
            f'{where}: model.teacher is not set. Extract with the '
            'online-teacher config (the one you train with '
            '--teacher-bank), which names the teacher and its checkpoint.')
    # By registry: the models register themselves above this layer.
    frozen = MODELS.get('FrozenTeacher')
    kind = teacher.get('type') if isinstance(teacher, dict) else None
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, frozen)):
        raise ValueError(
            f"{where}: model.teacher must be dict(type='FrozenTeacher', "
            "model=<the teacher's model config or file>, checkpoint=..., "
            'layer=..., pool=...); got ' + (f'type={kind!r}' if kind else
                                            repr(teacher)[:60]))
    args = {
        name: param.default
        for name, param in inspect.signature(cls).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    args.update((k, v) for k, v in to_builtin(teacher).items()
                if k != 'type')
    return args


# --------------------------------------------------------------- config
def _find(pipeline: Sequence[Dict], name: str, where: str) -> int:
    # Subclasses count (HalluSparseSampleFrames is a HalluSampleFrames).
    wanted = TRANSFORMS.get(name)

    def is_a(transform: Dict) -> bool:
        cls = transform.get('type')
        cls = TRANSFORMS.get(cls) if isinstance(cls, str) else cls
        return isinstance(cls, type) and issubclass(cls, wanted)

    hits = [i for i, t in enumerate(pipeline) if is_a(t)]
    if len(hits) != 1:
        raise ValueError(
            f'{where}: the train pipeline needs exactly one {name} to '
            f'derive the bank settings, found {len(hits)} (extract with '
            'the online-teacher config, the one you train with '
            '--teacher-bank)')
    return hits[0]


def refuse_frame_folders(dataset: Dict, where: str) -> None:
    """The feature bank is built from videos: refuse a train dataset that
    decodes frame folders (``RawFrameDecode``; its ``data_prefix`` may still
    name a ``video`` key inherited from another recipe)."""
    pipeline = innermost_dataset(dataset, where).get('pipeline', [])
    types = [t.get('type') for t in pipeline]
    prefix = innermost_dataset(dataset, where).get('data_prefix') or {}
    if 'RawFrameDecode' in types or (prefix.get('img')
                                     and not prefix.get('video')):
        raise ValueError(
            f'{where}: the train dataset reads frame folders '
            '(RawFrameDecode); the teacher feature bank is built from '
            'videos only. Train this config with its online teacher (no '
            '--teacher-bank, no teacher_bank / hallucination.bank), or '
            'convert the frames to videos')


def _dataset_pipeline(dataset: Dict, where: str) -> List[Dict]:
    """The pipeline of a (possibly wrapped) dataset config."""
    return list(innermost_dataset(dataset, where)['pipeline'])


def bank_settings(cfg: Union[PathLike, Config],
                  stride: Optional[int] = None,
                  dtype: str = 'float16') -> Dict:
    """What a config's bank holds, read from its model and train pipeline.

    Args:
        cfg (str | Config): An online-teacher HalluciNet config (with
            ``model.teacher``).
        stride (int, optional): Window stride; :func:`default_stride` when
            None.
        dtype (str): ``'float16'`` or ``'float32'``.

    Returns:
        dict: The :data:`IDENTITY_KEYS` except ``teacher_ckpt_sha256``,
        plus ``teacher_ckpt`` (path) and what the extraction uses (not
        stored): the built transforms (``_pipeline``) and the teacher
        view's normaliser (``_preprocessor``).
    """
    cfg = load_config(cfg)
    where = cfg.filename or 'config'
    if dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {list(DTYPES)}, got '
                         f'{dtype!r}')
    model = cfg.get('model') or {}
    spec = teacher_args(model, where)
    if spec.get('checkpoint') is None:
        raise ValueError(f'{where}: model.teacher.checkpoint is not set; a '
                         "bank of an untrained teacher's features is "
                         'useless')
    teacher = spec['model']
    if isinstance(teacher, str):
        teacher = Config.fromfile(teacher)['model']
    teacher = to_builtin(copy.deepcopy(teacher))
    # As build_teacher: the recognizer's own preprocessor is not used.
    teacher.pop('data_preprocessor', None)

    init_default_scope(cfg.get('default_scope', 'mmaction'))
    refuse_frame_folders(cfg.train_dataloader.dataset, where)
    pipeline = _dataset_pipeline(cfg.train_dataloader.dataset, where)
    i_sampler = _find(pipeline, 'HalluSampleFrames', where)
    i_split = _find(pipeline, 'HalluSplitViews', where)
    inits = [
        i for i in range(i_sampler) if pipeline[i]['type'].endswith('Init')
    ]
    decodes = [
        i for i in range(i_sampler, i_split)
        if pipeline[i]['type'].endswith('Decode')
    ]
    if len(inits) != 1 or len(decodes) != 1:
        raise ValueError(
            f'{where}: expected one *Init before HalluSampleFrames and one '
            '*Decode between it and HalluSplitViews (video decoding) in '
            'the train pipeline')
    sampler = TRANSFORMS.build(pipeline[i_sampler])
    split = TRANSFORMS.build(pipeline[i_split])
    if cfg.get('teacher_bank_view') is not None:
        view = [to_builtin(t) for t in cfg.teacher_bank_view]
    else:
        view = []
        for t in pipeline[decodes[0] + 1:i_split]:
            t = to_builtin(t)
            if t['type'] in _DETERMINISTIC:
                view.append(t)
            elif t['type'] in _RANDOM_TO_DETERMINISTIC:
                t = _RANDOM_TO_DETERMINISTIC[t['type']](t)
                if t is not None:
                    view.append(t)
            else:
                raise ValueError(
                    f'{where}: cannot derive a deterministic teacher view '
                    f'from {t["type"]} in the train pipeline; set '
                    '`teacher_bank_view` in the config to the transforms '
                    'the bank should apply between decoding and '
                    'HalluSplitViews')
    preprocessor = MODELS.build(model['data_preprocessor'])
    if not hasattr(preprocessor, 'teacher'):
        raise ValueError(f'{where}: model.data_preprocessor must be a '
                         'HalluciNetDataPreprocessor (per-view '
                         'normalisation)')
    norm = preprocessor.teacher
    normalise = getattr(norm, '_enable_normalize', False)
    stride = stride or default_stride(sampler.clip_len,
                                      sampler.frame_interval)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    return dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        teacher_config=json.dumps(teacher, indent=2, sort_keys=True),
        teacher_ckpt=str(spec['checkpoint']),
        teacher_layer=spec['layer'],
        teacher_pool=spec['pool'],
        clip_len=sampler.clip_len,
        frame_interval=sampler.frame_interval,
        stride=int(stride),
        out_of_bound_opt=sampler.out_of_bound_opt,
        dtype=dtype,
        view=dict(
            transforms=_jsonable(view),
            scale=list(split.teacher_scale) if split.teacher_scale else None,
            interpolation=split.interpolation,
            mean=norm.mean.flatten().tolist() if normalise else None,
            std=norm.std.flatten().tolist() if normalise else None,
            to_rgb=norm.to_rgb),
        _pipeline=dict(
            init=TRANSFORMS.build(pipeline[inits[0]]),
            decode=TRANSFORMS.build(pipeline[decodes[0]]),
            view=[TRANSFORMS.build(t) for t in view],
            split=split,
            sampler=sampler),
        _preprocessor=norm)


def _read_bank_in(dataset: Dict, store: str, where: str) -> None:
    """Switch one train dataset config's pipeline from the teacher view to
    the bank (see :func:`use_teacher_bank`), in place."""
    pipeline = dataset['pipeline']
    prefix = dataset.get('data_prefix') or {}
    refuse_frame_folders(dataset, where)
    if any(t['type'] == 'LoadFlowClips' for t in pipeline):
        raise ValueError(
            f'{where}: the teacher reads optical flow (LoadFlowClips), and '
            'the feature bank stores teachers of decoded RGB clips only; '
            'train this config with its online teacher')
    i_sampler = _find(pipeline, 'HalluSampleFrames', where)
    i_split = _find(pipeline, 'HalluSplitViews', where)
    sampler = pipeline[i_sampler]
    sampler['with_teacher'] = False
    pipeline[i_split]['teacher_scale'] = None
    packs = [t for t in pipeline if t['type'] == 'PackActionInputs']
    if len(packs) != 1 or 'teacher_imgs' not in packs[0].get(
            'collect_keys', ()):
        raise ValueError(
            f'{where}: expected one PackActionInputs collecting '
            "'teacher_imgs' in the train pipeline")
    packs[0]['collect_keys'] = tuple(
        'teacher_feats' if k == 'teacher_imgs' else k
        for k in packs[0]['collect_keys'])
    load = dict(
        type='LoadTeacherFeatures',
        store=store,
        data_prefix=prefix.get('video'),
        clip_len=sampler['clip_len'])
    if 'frame_interval' in sampler:
        load['frame_interval'] = sampler['frame_interval']
    pipeline.insert(i_sampler + 1, load)


def check_teacher_bank(cfg: Config, store: str) -> Dict:
    """Refuse a store that does not hold the targets of ``cfg``'s teacher.

    What ``tools/train.py CONFIG --teacher-bank STORE`` runs before
    switching: the store must be complete, and its teacher (config,
    checkpoint hash), ``teacher_layer``, ``teacher_pool``, teacher view
    and normalisation and clip sampling (``clip_len``, ``frame_interval``,
    ``out_of_bound_opt``) must be those the online config derives
    (:func:`bank_settings`). The store's own ``stride`` and ``dtype`` are
    extraction choices and are taken as they are. The checkpoint hash is
    compared when the checkpoint of ``model.teacher`` is a local file;
    training from a bank whose teacher checkpoint is gone is allowed, and
    says so.

    Args:
        cfg (Config): The online-teacher config (before the switch).
        store (str): The feature store.

    Returns:
        dict: What was compared (``store``, ``checked`` keys,
        ``teacher_ckpt_sha256`` or why it was not compared).
    """
    where = cfg.filename or 'config'
    for dataset in pipeline_datasets(cfg.train_dataloader.dataset):
        refuse_frame_folders(dataset, where)
    if not osp.isdir(store):
        raise FileNotFoundError(
            f'teacher feature bank not found: {store}; build it with '
            f'tools/extract_teacher_features.py {where} --out {store}')
    meta = FeatureBank(store).meta
    if not meta.get('complete'):
        raise ValueError(
            f'teacher feature bank {store} is incomplete (its extraction '
            'did not finish): run tools/extract_teacher_features.py '
            f'{where} --out {store} again, which adds the missing videos')
    checked = copy.deepcopy(cfg)
    ckpt = teacher_args(checked.get('model') or {}, where)['checkpoint']
    if ckpt is None:
        checked.model.teacher.checkpoint = '<not set>'
    settings = {
        k: v
        for k, v in bank_settings(
            checked, stride=meta.get('stride'),
            dtype=meta.get('dtype', 'float16')).items()
        if not k.startswith('_')
    }
    record = dict(store=store, checked=[], complete=True)
    if ckpt is not None and '://' not in str(ckpt) and osp.isfile(ckpt):
        settings['teacher_ckpt_sha256'] = sha256_file(ckpt)
        record['teacher_ckpt_sha256'] = settings['teacher_ckpt_sha256']
    else:
        record['teacher_ckpt_sha256'] = (
            f'not compared: model.teacher.checkpoint {ckpt!r} is not a '
            'local file')
        print_log(
            f'teacher feature bank {store}: the teacher checkpoint '
            f'{ckpt!r} is not here, so the store\'s teacher_ckpt_sha256 '
            'is not compared; every other setting is',
            logger='current',
            level=logging.WARNING)
    _check_compatible(
        meta, settings, store,
        hint=f'Extract a bank for {where} '
        '(tools/extract_teacher_features.py), or train with the config '
        'the store was extracted with.')
    record['checked'] = sorted(k for k in IDENTITY_KEYS if k in settings)
    return record


def use_teacher_bank(cfg: Config, store: str) -> Config:
    """Switch an online-teacher HalluciNet config to its feature bank.

    What ``tools/train.py CONFIG --teacher-bank STORE`` does, so every
    HalluciNet config (the repository's and users' own) has a bank variant
    without a second file. In the train pipeline, the sampler stops adding
    the teacher's frames, :class:`LoadTeacherFeatures` (reading ``store``,
    with the sampler's clip length) follows it, the teacher view is no
    longer made, and ``teacher_feats`` is packed instead of
    ``teacher_imgs``; the model's teacher and checkpoint are unset, so the
    teacher is not even built. Validation and test pipelines, which never
    ran the teacher, are unchanged. Build the store from the same config
    with ``tools/extract_teacher_features.py``.

    Args:
        cfg (Config): An online-teacher config, edited in place.
        store (str): The feature store (an LMDB directory).

    Returns:
        Config: ``cfg``.
    """
    where = cfg.filename or 'config'
    model = cfg.get('model') or {}
    if model.get('teacher') is None:
        raise ValueError(
            f'{where}: model.teacher is not set, so there is no online '
            'teacher for --teacher-bank to replace (is this config '
            'already switched to a bank, or not a HalluciNet config?)')
    if not osp.isdir(store):
        raise FileNotFoundError(
            f'teacher feature bank not found: {store}; build it with '
            f'tools/extract_teacher_features.py {where} --out {store}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Every dataset of the train set: a ConcatDataset of labelled and
    # unlabelled videos (--unlabelled) reads the bank in both.
    for dataset in pipeline_datasets(cfg.train_dataloader.dataset):
        _read_bank_in(dataset, store, where)
    model['teacher'] = None
    cfg.teacher_bank = store
    return cfg


def sha256_file(filename: str) -> str:
    """Hex sha256 of a file (or of a URL's download)."""
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'teacher.checkpoint not found: {filename} (set the checkpoint '
            'of model.teacher to the trained teacher checkpoint)')
    digest = hashlib.sha256()
    with get_local_path(filename) as local:
        with open(local, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()
