"""Hallucination on unlabelled videos: the config switch.

The hallucination loss needs no label (its target is the frozen teacher's
representation of the clip), so a HalluciNet student can also learn it on
videos nobody labelled. :func:`use_unlabelled` turns any HalluciNet config
into that set-up, as ``tools/train.py CONFIG --unlabelled LIST`` does:
the train set becomes a ``ConcatDataset`` of the config's labelled dataset
and a :class:`HalluVideoDataset` of the unlabelled list (same pipeline,
``unlabelled=True``), and :class:`MixedSourceSampler` fills every batch in
a fixed ratio; :class:`HalluciNet` computes the classification loss on the
labelled samples only and the hallucination loss on all of them.
"""
import copy
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from ..utils.config import innermost_dataset

# Unlabelled videos per labelled one in a batch, at most.
MAX_UNLABELLED_RATIO = 32


def unlabelled_dataset(labelled: Dict,
                       ann_file: str,
                       ignore_labels: bool = False,
                       data_prefix: Optional[str] = None,
                       where: str = 'config') -> Dict:
    """The dataset config of an unlabelled video list beside ``labelled``.

    Args:
        labelled (dict): The labelled train dataset config (possibly
            wrapped); its innermost dataset gives the pipeline and the
            video folder.
        ann_file (str): The unlabelled list: a path per line, or a labelled
            list with ``ignore_labels``.
        ignore_labels (bool): Accept a labelled list and never read its
            labels.
        data_prefix (str, optional): The folder the list's paths are
            relative to; by default the labelled dataset's
            ``data_prefix.video``.
        where (str): The config's name, for the error messages.

    Returns:
        dict: A :class:`HalluVideoDataset` config with ``unlabelled=True``.
    """
    leaf = innermost_dataset(labelled, where)
    if _type_name(leaf) == 'MTLAQADataset':
        return unlabelled_dives(leaf, ann_file, data_prefix)
    prefix = dict(leaf.get('data_prefix') or {})
    if data_prefix is None:
        if not prefix.get('video'):
            raise ValueError(
                f'{where}: the train dataset reads frame folders '
                '(data_prefix.img); unlabelled data are video files read by '
                'HalluVideoDataset with the same pipeline, so they need a '
                'train pipeline that decodes videos')
        data_prefix = prefix['video']
        # The labelled prefix may be relative to the dataset's data_root.
        root = leaf.get('data_root')
        if root and not osp.isabs(data_prefix):
            data_prefix = osp.join(root, data_prefix)
    pipeline = copy.deepcopy(list(leaf['pipeline']))
    for transform in pipeline:
        # The bank's keys are paths relative to the videos' own folder.
        if transform.get('type') == 'LoadTeacherFeatures':
            transform['data_prefix'] = data_prefix
    return dict(
        type='HalluVideoDataset',
        ann_file=ann_file,
        data_prefix=dict(video=data_prefix),
        pipeline=pipeline,
        unlabelled=True,
        ignore_labels=ignore_labels)


def unlabelled_dives(labelled: Dict,
                     ann_file: str,
                     data_prefix: Optional[str] = None) -> Dict:
    """The unlabelled counterpart of an :class:`MTLAQADataset` config.

    Dives lie inside event videos, so an unlabelled dive is a window, not
    a file: ``ann_file`` is either a split file (``.pkl``, a list of
    ``(event, clip)`` keys) selecting dives of the labelled dataset's
    annotation dict, or a ``.json`` / ``.csv`` table of records with
    ``event``, ``clip``, ``start_frame`` and ``end_frame``. Either way no
    property or score is read (``MTLAQADataset(unlabelled=True)``).

    Args:
        labelled (dict): The labelled ``MTLAQADataset`` config.
        ann_file (str): Split file or record table of the unlabelled dives.
        data_prefix (str, optional): Folder of their event videos; by
            default the labelled dataset's.

    Returns:
        dict: The ``MTLAQADataset`` config with ``unlabelled=True``.
    """
    dataset = copy.deepcopy(dict(labelled))
    ext = osp.splitext(ann_file)[1].lower()
    if ext == '.pkl':
        dataset['split_file'] = osp.abspath(ann_file)
    elif ext in ('.json', '.csv'):
        dataset.update(ann_file=osp.abspath(ann_file), split_file=None)
    else:
        raise ValueError(
            f'{ann_file}: unlabelled dives are given by a split file '
            '(.pkl, a list of (event, clip) keys of the annotation dict) or '
            f'a .json/.csv table of records, not {ext!r}')
    if data_prefix is not None:
        key = 'img' if 'img' in (dataset.get('data_prefix') or {}) \
            else 'video'
        dataset['data_prefix'] = {key: data_prefix}
    dataset.update(unlabelled=True, test_mode=False)
    return dataset


def _type_name(dataset: Dict) -> str:
    kind = dataset.get('type', '')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', '')


def use_unlabelled(cfg: Config,
                   ann_file: str,
                   ratio: float = 1.0,
                   ignore_labels: bool = False,
                   data_prefix: Optional[str] = None) -> Config:
    """Train a HalluciNet config on its labelled videos plus unlabelled ones.

    What ``tools/train.py CONFIG --unlabelled LIST [--unlabelled-ratio R]``
    does: the train set becomes ``ConcatDataset([labelled, unlabelled])``
    (see :func:`unlabelled_dataset`), and each batch holds the config's
    ``batch_size`` labelled samples plus ``round(R * batch_size)``
    unlabelled ones, drawn by :class:`MixedSourceSampler`; an epoch still
    goes once over the labelled videos. Validation and test are unchanged.
    Works with the online teacher and with the feature bank (which must
    then hold the unlabelled videos too: extract it with the same
    ``--unlabelled`` switch).

    Args:
        cfg (Config): A HalluciNet config, edited in place.
        ann_file (str): The unlabelled list.
        ratio (float): Unlabelled samples per labelled sample in a batch.
        ignore_labels (bool): ``ann_file`` is a labelled list whose labels
            are not to be read.
        data_prefix (str, optional): Folder of the unlabelled videos; by
            default the labelled ones'.

    Returns:
        Config: ``cfg``.
    """
    where = cfg.filename or 'config'
    model = cfg.get('model') or {}
    if model.get('hallu_head') is None:
        raise ValueError(
            f'{where}: model.hallu_head is not set; unlabelled videos train '
            'only the hallucination loss, so they need a HalluciNet config '
            'that hallucinates')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'unlabelled video list not found: '
                                f'{ann_file}')
    if not 0 < ratio <= MAX_UNLABELLED_RATIO:
        raise ValueError(
            f'the unlabelled ratio must be in (0, {MAX_UNLABELLED_RATIO}], '
            f'got {ratio}: each batch holds ratio x batch_size unlabelled '
            'videos, and beyond a few per labelled one the classification '
            'loss sees a vanishing share of every step (the demo uses 2)')
    loader = cfg.train_dataloader
    labelled = loader.dataset
    sampler = loader.get('sampler') or {}
    if sampler.get('type') == 'MixedSourceSampler':
        raise ValueError(
            f'{where}: the train dataloader already mixes sources '
            '(MixedSourceSampler); add unlabelled lists to its '
            'ConcatDataset instead')
    if sampler.get('type', 'DefaultSampler') != 'DefaultSampler':
        raise ValueError(
            f"{where}: train_dataloader.sampler is {sampler['type']}; "
            '--unlabelled replaces it with MixedSourceSampler and supports '
            'only configs with the DefaultSampler')
    num_labelled = loader.batch_size
    num_unlabelled = round(ratio * num_labelled)
    if num_unlabelled < 1:
        raise ValueError(
            f'ratio {ratio} gives no unlabelled sample in a batch of '
            f'{num_labelled} labelled ones')
    unlabelled = unlabelled_dataset(labelled, ann_file, ignore_labels,
                                    data_prefix, where)
    batch_size = num_labelled + num_unlabelled
    loader.batch_size = batch_size
    loader.sampler = dict(
        type='MixedSourceSampler',
        batch_size=batch_size,
        source_ratio=[num_labelled, num_unlabelled],
        shuffle=sampler.get('shuffle', True))
    loader.dataset = dict(
        type='ConcatDataset', datasets=[labelled, unlabelled])
    return cfg
