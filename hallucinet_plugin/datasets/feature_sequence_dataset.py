import copy
import glob
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS
from mmengine.fileio import list_from_file

from ..feature_bank import FeatureBank
from ..utils.typing_utils import ConfigType
from .tfrecord_sequences import (
    context_of,
    parse_sequence_example,
    record_offsets,
)

STREAM_TYPES = ('npy', 'bank', 'tfrecord')


@DATASETS.register_module()
class FeatureSequenceDataset(BaseActionDataset):
    """Videos as sequences of precomputed features, one or more streams.

    MoNet's own setting (Tang, Ma and Zhou, IJCAI 2019): each video is a
    sequence of ``T`` appearance features ``(T, D_a)`` and, where it was
    computed, a sequence of motion (optical-flow stream) features
    ``(T, D_m)``, step ``t`` of both describing the same moment. Each
    stream comes from one of three sources:

    * ``dict(type='npy', prefix=DIR)``: ``DIR/<video_id>.npy``, a
      ``(T, D)`` array (read with ``allow_pickle=False``);
    * ``dict(type='bank', store=PATH)``: the project's feature store (an
      LMDB bank written by ``tools/extract_teacher_features.py``), keyed by
      ``video_id``; banks of different clip lengths (a 1-frame appearance
      bank and a 16-frame motion bank, say) are aligned by the first frames
      of their windows;
    * ``dict(type='tfrecord', files=GLOB, feature='rgb', dequantize=(-2,
      2))``: YouTube-8M's frame-level TFRecord shards (``rgb`` or
      ``audio``), read with the ``tfrecord`` package's protobuf classes.

    The annotation file has one video per line, ``video_id label [label
    ...]`` (several labels with ``multi_class=True``, which turns them into
    a multi-hot vector of ``num_classes``). Labels are checked when the
    dataset is built: negative ones, and ones ``>= num_classes`` when it is
    given, are errors naming the line; with ``allow_unlabelled=True`` a
    label ``-1`` marks an unlabelled video (its metainfo says
    ``labelled=False``: the recognizer trains it on the hallucination loss
    only). With ``ann_file=None`` the
    videos and labels of the first TFRecord stream are used. Every video is
    checked at construction to be in every stream: a missing one is an
    error naming it and the source, never a skipped sample.

    Args:
        ann_file (str, optional): The annotation file, or None (TFRecord
            labels).
        streams (dict): Stream name (``'appearance'``, ``'motion'``, ...)
            -> source config, as above.
        pipeline (list): Transforms; starts with
            :class:`LoadFeatureSequence`.
        multi_class (bool): Several labels per video (YouTube-8M).
        num_classes (int, optional): Needed with ``multi_class``; labels
            are checked against it.
        allow_unlabelled (bool): Accept label ``-1`` (single-label lists)
            as an unlabelled video.
        test_mode (bool): Test mode.
    """

    def __init__(self,
                 ann_file: Optional[str],
                 streams: Dict[str, ConfigType],
                 pipeline: List[Union[ConfigType, Callable]],
                 multi_class: bool = False,
                 num_classes: Optional[int] = None,
                 allow_unlabelled: bool = False,
                 test_mode: bool = False,
                 **kwargs) -> None:
        self.allow_unlabelled = allow_unlabelled
        if not streams:
            raise ValueError('FeatureSequenceDataset: streams is empty; '
                             "give e.g. dict(appearance=dict(type='npy', "
                             "prefix='data/rgb_features'))")
        self.streams = {
            name: self._check_stream(name, spec)
            for name, spec in streams.items()
        }
        if multi_class and not num_classes:
            raise ValueError('FeatureSequenceDataset: multi_class=True needs '
                             'num_classes')
        self._record_index: Dict[str, Dict[str, tuple]] = {}
        self._banks: Dict[str, FeatureBank] = {}
        super().__init__(
            ann_file or '',
            pipeline=pipeline,
            multi_class=multi_class,
            num_classes=num_classes,
            test_mode=test_mode,
            **kwargs)

    @staticmethod
    def _check_stream(name: str, spec: ConfigType) -> Dict:
        spec = copy.deepcopy(dict(spec))
        kind = spec.get('type')
        needs = dict(npy='prefix', bank='store', tfrecord='files')
        if kind not in STREAM_TYPES:
            raise ValueError(f'FeatureSequenceDataset: streams.{name}.type '
                             f'is {kind!r}; expected one of {STREAM_TYPES}')
        if not spec.get(needs[kind]):
            raise ValueError(f'FeatureSequenceDataset: streams.{name} '
                             f"(type={kind!r}) needs '{needs[kind]}'")
        if kind == 'tfrecord':
            spec.setdefault('feature', 'rgb')
            spec['dequantize'] = tuple(spec.get('dequantize', (-2.0, 2.0)))
        return spec

    def prepare_data(self, idx: int):
        """The sample, its metainfo ``labelled=False`` for a video listed
        with label -1 (``allow_unlabelled``)."""
        data = super().prepare_data(idx)
        if self.get_data_info(idx).get('labelled') is False:
            samples = data.get('data_samples')
            if samples is not None:
                samples.set_metainfo(dict(labelled=False))
        return data

    # ---------------------------------------------------------- records
    def _tfrecord_index(self, name: str) -> Dict[str, tuple]:
        """``video_id -> (file, offset, labels)`` of a TFRecord stream."""
        pattern = self.streams[name]['files']
        if pattern in self._record_index:
            return self._record_index[pattern]
        files = sorted(glob.glob(pattern))
        if not files:
            raise FileNotFoundError(
                f'FeatureSequenceDataset: streams.{name}.files={pattern!r} '
                'matches no file')
        index = {}
        for path in files:
            for offset, data in record_offsets(path):
                where = f'{path} (record at byte {offset})'
                video_id, labels = context_of(
                    parse_sequence_example(data, where), where)
                if video_id in index:
                    raise ValueError(f'{where}: video {video_id!r} also in '
                                     f'{index[video_id][0]}')
                index[video_id] = (path, offset, labels)
        self._record_index[pattern] = index
        return index

    # ------------------------------------------------------ annotations
    def load_data_list(self) -> List[Dict]:
        """One entry per video: ``video_id``, ``label`` and
        ``feature_streams`` (where each stream's features lie)."""
        if self.ann_file:
            videos = self._read_ann_file()
        else:
            records = [
                n for n, s in self.streams.items() if s['type'] == 'tfrecord'
            ]
            if not records:
                raise ValueError(
                    'FeatureSequenceDataset: ann_file is None, which takes '
                    'the videos and labels of a TFRecord stream, but no '
                    'stream has type tfrecord')
            index = self._tfrecord_index(records[0])
            videos = [(vid, labels, f'{path} (byte {offset})')
                      for vid, (path, offset, labels) in index.items()]
        return [self._data_info(*video) for video in videos]

    def _read_ann_file(self) -> List[tuple]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'annotation file not found: '
                                    f'{self.ann_file}')
        videos = []
        for number, line in enumerate(list_from_file(self.ann_file), 1):
            if not line.strip():
                continue
            where = f'{self.ann_file}, line {number}'
            fields = line.split()
            try:
                labels = [int(x) for x in fields[1:]]
            except ValueError as err:
                raise ValueError(f'{where}: labels must be integers: '
                                 f'{line!r}') from err
            videos.append((fields[0], labels, where))
        if not videos:
            raise ValueError(f'{self.ann_file}: no video listed')
        return videos

    def _data_info(self, video_id: str, labels: Sequence[int],
                   where: str) -> Dict:
        if self.multi_class:
            bad = [x for x in labels if not 0 <= x < self.num_classes]
            if bad:
                raise ValueError(f'{where}: labels {bad} outside '
                                 f'[0, {self.num_classes})')
            label = list(labels)
        else:
            if len(labels) != 1:
                raise ValueError(
                    f'{where}: {len(labels)} labels for video '
                    f'{video_id!r}; a single-label dataset needs exactly '
                    'one (multi_class=True for several)')
            label = labels[0]
            unlabelled = label == -1 and self.allow_unlabelled
            if label < 0 and not unlabelled:
                raise ValueError(
                    f'{where}: label {label} of video {video_id!r} is '
                    'negative (-1 marks an unlabelled video with '
                    'allow_unlabelled=True)')
            if self.num_classes and label >= self.num_classes:
                raise ValueError(
                    f'{where}: label {label} of video {video_id!r} outside '
                    f'[0, {self.num_classes})')
            if unlabelled:
                return dict(self._data_info(video_id, [0], where),
                            label=-1, labelled=False)
        return dict(
            video_id=video_id,
            label=label,
            feature_streams={
                name: self._locate(name, video_id, where)
                for name in self.streams
            })

    def _locate(self, name: str, video_id: str, where: str) -> Dict:
        """Where a video's features of one stream lie; checked now."""
        spec = dict(self.streams[name])
        if spec['type'] == 'npy':
            spec['path'] = osp.join(spec['prefix'], f'{video_id}.npy')
            if not osp.isfile(spec['path']):
                raise FileNotFoundError(
                    f'{where}: no {name} features for video {video_id!r}: '
                    f"{spec['path']} does not exist")
        elif spec['type'] == 'bank':
            bank = self._banks.setdefault(spec['store'],
                                          FeatureBank(spec['store']))
            if video_id not in bank:
                raise KeyError(f'{where}: video {video_id!r} is not in the '
                               f"{name} feature store {spec['store']}")
        else:
            index = self._tfrecord_index(name)
            if video_id not in index:
                raise KeyError(f'{where}: video {video_id!r} is in none of '
                               f"the {name} TFRecords {spec['files']}")
            spec['record'] = index[video_id][:2]
        return spec
