"""MTL-AQA (Parmar & Morris, CVPR 2019): Olympic dives with dive-property
labels and judges' scores.

Facts about the release this reader relies on (github.com/ParitoshParmar/
MTL-AQA, ``MTL-AQA_dataset_release`` and ``MTL-AQA_code_release``):

* ``Ready_2_Use/MTL-AQA_split_0_data/final_annotations_dict.pkl`` is a dict
  keyed by ``(event, clip)`` tuples of ints; each value is a dict with
  ``primary_view``, ``start_frame``, ``end_frame``, ``position``,
  ``difficulty``, ``armstand``, ``rotation_type``, ``ss_no``, ``tw_no`` and
  ``final_score``. ``train_split_0.pkl`` / ``test_split_0.pkl`` are lists of
  such keys.
* The dive properties are stored as 0-based class ids: the official loader
  feeds them unchanged to ``nn.CrossEntropyLoss`` over classifiers with 3
  (position), 2 (armstand), 4 (rotation type), 10 (somersaults) and 8
  (twists) outputs (``models/C3DAVG/dive_classifier.py``).
* Frames come from whole competition videos ``whole_videos/{event:02d}.mp4``;
  ``frame_extractor.sh`` writes ``whole_videos_frames/{event:02d}/%06d.jpg``
  (ffmpeg numbers from 1), and the official loader indexes the sorted frame
  list from 0, so frame ``k`` of the annotation is file ``k + 1``.
"""
import csv
import json
import math
import os.path as osp
import pickle
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS

from ..utils.mtl_aqa import MTL_AQA_PROPERTIES
from ..utils.pickle_data import (
    SAFE_GLOBALS,
    DTypeSpec,
    numpy_scalar,
    resolve,
    without_lengths,
)
from ..utils.typing_utils import ConfigType

# Names accepted in JSON/CSV annotations in place of class ids. This is the
# plugin's own convention: the release stores ids only and does not document
# which name each id stands for, so do not mix named annotations with ids
# taken from the released pickle.
DIVE_LABEL_MAPS = dict(
    position=dict(free=0, tuck=1, pike=2),
    armstand=dict(no=0, yes=1),
    rotation_type=dict(forward=0, backward=1, reverse=2, inward=3))

_FRAME_FIELDS = ('start_frame', 'end_frame')
_SCORE_FIELD = 'final_score'


# Far more than annotation files hold (a few thousand dives), far less than
# a hostile file could ask the reader to allocate.
MAX_ANNOTATION_PICKLE_BYTES = 64 << 20


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds plain Python data and nothing else.

    Annotation pickles come from the internet; ``pickle.load`` would run any
    callable they name. The annotation files hold only containers, numbers
    and strings, which need no callable at all, plus numpy scalars when the
    annotations were built with numpy/pandas; those are rebuilt through the
    checked stand-ins of :mod:`hallucinet_plugin.utils.pickle_data` (plain
    numeric dtypes only: a forged dtype state is refused, not trusted).
    """

    _CONTAINERS = frozenset(('dict', 'list', 'tuple', 'set', 'frozenset'))
    _BUILTINS = _CONTAINERS | {'int', 'float', 'complex', 'str', 'bool'}
    _SIZED = {
        name: without_lengths(cls)
        for name, cls in (('bytes', bytes), ('bytearray', bytearray))
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == '__builtin__':  # protocol 2 written by Python 2
            module = 'builtins'
        if module == 'builtins' and name in self._BUILTINS:
            return _scalar_arguments(super().find_class(module, name),
                                     name in self._CONTAINERS)
        if module == 'builtins' and name in self._SIZED:
            return self._SIZED[name]
        if (module, name) == ('numpy', 'dtype'):
            return DTypeSpec
        if name == 'scalar' and f'{module}.{name}' in SAFE_GLOBALS:
            return numpy_scalar
        # Protocol-2 pickles written by Python 3 encode bytes this way.
        if (module, name) == ('_codecs', 'encode'):
            return _latin1_encode
        raise pickle.UnpicklingError(
            f'refusing to load {module}.{name}: annotation pickles may only '
            'hold plain data (dicts, lists, tuples, numbers, strings)')


_SCALAR_TYPES = (type(None), bool, int, float, complex, str, bytes)


def _scalar_arguments(cls: type, container: bool) -> Any:
    """``cls`` called only as plain data needs it: a container type on one
    container or nothing (a shallow copy, linear in its length), any other
    type on scalars only. ``str`` of a pickled web of shared lists would
    otherwise write out every path through it (a few hundred bytes of
    pickle, exponentially many characters)."""

    def build(*args: Any) -> Any:
        allowed = (list, tuple, dict, set, frozenset) if container \
            else _SCALAR_TYPES
        for arg in args:
            if not isinstance(arg, allowed):
                raise pickle.UnpicklingError(
                    f'refusing {cls.__name__}() of a '
                    f'{type(arg).__name__}: annotation pickles build plain '
                    'values from plain values')
        return cls(*args)

    return build


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    if encoding != 'latin1':
        raise pickle.UnpicklingError(
            f'refusing to decode pickled bytes with codec {encoding!r}')
    return text.encode('latin1')


def load_plain_pickle(path: str) -> Any:
    """Load a pickle that may contain only plain Python data.

    Args:
        path (str): Pickle file, at most
            :data:`MAX_ANNOTATION_PICKLE_BYTES` long.

    Returns:
        The unpickled object.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist')
    size = osp.getsize(path)
    if size > MAX_ANNOTATION_PICKLE_BYTES:
        raise ValueError(
            f'{path}: {size} bytes, more than an annotation pickle should '
            f'hold ({MAX_ANNOTATION_PICKLE_BYTES} bytes); refused')
    with open(path, 'rb') as f:
        try:
            return resolve(_PlainDataUnpickler(f).load())
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
                MemoryError, OverflowError, RecursionError) as e:
            raise ValueError(f'{path}: cannot load as plain data: '
                             f'{type(e).__name__}: {e}') from e


@DATASETS.register_module()
class MTLAQADataset(BaseActionDataset):
    """MTL-AQA dives with dive-property labels and quality scores.

    ``ann_file`` is either the released ``final_annotations_dict.pkl``, with
    ``split_file`` naming ``train_split_0.pkl`` or ``test_split_0.pkl`` (all
    annotated dives, in key order, when ``split_file`` is None), or, for
    other data, a ``.json`` list of records or a ``.csv`` table with a header
    row. A record has the released fields plus the key: ``event`` and
    ``clip`` (ints), ``start_frame``, ``end_frame``, one field per property,
    ``final_score`` and, optionally, ``difficulty`` and ``video`` (file or
    folder name relative to the data prefix, replacing the templates).
    Property values are class ids or, in JSON/CSV, names from
    ``label_maps``.

    Every dive lies inside its event's video: ``data_prefix=dict(video=...)``
    reads ``video_tmpl.format(event)`` and ``data_prefix=dict(img=...)``
    reads frames ``filename_tmpl.format(i)`` from the folder
    ``frame_dir_tmpl.format(event)``. ``end_frame`` is inclusive, so a dive
    spans ``end_frame - start_frame + 1`` frames. Each sample gives the
    pipeline that window as ``start_index`` (``start_frame`` plus the index
    of the first file, ``start_index`` below) and ``total_frames``, so
    mmaction's samplers stay inside the dive. mmaction's ``DecordInit``
    overwrites ``total_frames`` with the whole video's length: put the
    sampler before it, or read ``start_frame`` / ``end_frame``, which are
    kept too.

    Ground truth goes to ``dive_labels`` (dict name -> class id) and
    ``score`` (``final_score`` in points, not normalised: the head that
    regresses it owns the normalisation); ``difficulty`` when annotated;
    ``video_id`` is ``'{event:02d}_{clip:02d}'``. Pack them with
    ``PackActionInputs(meta_keys=('video_id', 'dive_labels', 'score'))``.

    Args:
        ann_file (str): Annotation file (``.pkl``, ``.json`` or ``.csv``).
        pipeline (list[dict | callable]): Data transforms.
        split_file (str, optional): Pickled list of ``(event, clip)`` keys
            selecting the dives of ``ann_file`` (``.pkl`` only). Relative
            paths are joined with ``data_root``, like ``ann_file``.
        data_prefix (dict): ``dict(video=folder)`` for videos or
            ``dict(img=folder)`` for extracted frames.
        properties (dict[str, int], optional): Dive properties to read and
            their class counts, by default ``MTL_AQA_PROPERTIES``; None
            reads none (quality assessment only).
        with_score (bool): Read ``final_score``; False for recognition
            only.
        label_maps (dict[str, dict[str, int]], optional): Names accepted in
            JSON/CSV for each property; defaults to ``DIVE_LABEL_MAPS``.
        video_tmpl (str): Video file of an event, formatted with the event.
        frame_dir_tmpl (str): Frame folder of an event, formatted with the
            event.
        filename_tmpl (str): Frame file, formatted with the frame index.
        start_index (int, optional): Index of the first frame file; None
            gives 0 for videos (decoders count from 0) and 1 for frames
            (``frame_extractor.sh``).
        modality (str): Modality, as in mmaction's datasets.
        test_mode (bool): Whether the dataset is for testing.
        unlabelled (bool): Dives nobody labelled, for the hallucination
            loss alone (``tools/train.py --unlabelled``): only the key and
            the window (``start_frame``, ``end_frame``) of each record are
            read, never a property or the score, and every sample's
            metainfo says ``labelled=False``, so that the recognizer leaves
            it out of the classification and score losses.
        **kwargs: Passed to mmengine's ``BaseDataset`` (``data_root``,
            ``lazy_init``, ...).
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[ConfigType, Callable]],
                 split_file: Optional[str] = None,
                 data_prefix: ConfigType = dict(video=''),
                 properties: Optional[Dict[str, int]] = MTL_AQA_PROPERTIES,
                 with_score: bool = True,
                 label_maps: Optional[Dict[str, Dict[str, int]]] = None,
                 video_tmpl: str = '{:02d}.mp4',
                 frame_dir_tmpl: str = '{:02d}',
                 filename_tmpl: str = '{:06d}.jpg',
                 start_index: Optional[int] = None,
                 modality: str = 'RGB',
                 test_mode: bool = False,
                 unlabelled: bool = False,
                 **kwargs) -> None:
        if unlabelled and test_mode:
            raise ValueError(
                f'{ann_file}: unlabelled=True is for training (the '
                'hallucination loss); a test set needs labels')
        self.unlabelled = unlabelled
        if unlabelled:
            # Nothing but the window is read.
            properties, with_score = None, False
        prefix_keys = {'video', 'img'} & set(data_prefix)
        if len(prefix_keys) != 1:
            raise ValueError(
                'MTLAQADataset: data_prefix needs exactly one of the keys '
                f"'video' (videos) or 'img' (frame folders), got "
                f'{dict(data_prefix)}')
        self.use_frames = 'img' in prefix_keys
        self.properties = dict(properties or {})
        for name, num_classes in self.properties.items():
            if not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(
                    f'MTLAQADataset: properties[{name!r}] must be a '
                    f'positive class count, got {num_classes!r}')
        self.with_score = with_score
        label_maps = DIVE_LABEL_MAPS if label_maps is None else label_maps
        self.label_maps = {
            prop: {str(k).lower(): v
                   for k, v in names.items()}
            for prop, names in label_maps.items()
        }
        self.split_file = split_file
        self.video_tmpl = video_tmpl
        self.frame_dir_tmpl = frame_dir_tmpl
        self.filename_tmpl = filename_tmpl
        if start_index is None:
            start_index = 1 if self.use_frames else 0
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=data_prefix,
            test_mode=test_mode,
            start_index=start_index,
            modality=modality,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read, check and convert the annotations of the selected dives."""
        ext = osp.splitext(self.ann_file)[1].lower()
        if ext not in ('.pkl', '.json', '.csv'):
            raise ValueError(
                f'{self.ann_file}: MTLAQADataset reads .pkl (MTL-AQA '
                f'release), .json or .csv annotations, not {ext!r}')
        if ext != '.pkl' and self.split_file is not None:
            raise ValueError(
                f'{self.ann_file}: split_file only selects dives of a .pkl '
                'annotation dict; write one JSON/CSV file per split instead')
        if ext == '.pkl':
            records = self._load_release()
        else:
            records = self._load_table(ext)
        return [self._parse_record(key, rec) for key, rec in records]

    def get_data_info(self, idx: int) -> dict:
        """Get the annotation of a dive, with its window in the video."""
        data_info = super().get_data_info(idx)
        # BaseActionDataset sets the dataset-wide first-file index; the dive
        # starts ``start_frame`` frames later.
        data_info['start_index'] = (
            self.start_index + data_info['start_frame'])
        return data_info

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's sample; an unlabelled dive says so in its
        metainfo (``labelled=False``)."""
        data = super().prepare_data(idx)
        samples = data.get('data_samples') if isinstance(data, dict) \
            else None
        if self.unlabelled and samples is not None:
            samples.set_metainfo(dict(labelled=False))
        return data

    def _load_release(self) -> List[Tuple[tuple, dict]]:
        """Read the released annotation dict and split list."""
        annos = load_plain_pickle(self.ann_file)
        if not isinstance(annos, dict):
            raise ValueError(
                f'{self.ann_file}: expected a dict keyed by (event, clip), '
                f'got {type(annos).__name__}')
        for key, rec in annos.items():
            _check_key(key, self.ann_file)
            if not isinstance(rec, dict):
                raise ValueError(
                    f'{self.ann_file}: annotation {key!r} is a '
                    f'{type(rec).__name__}, expected a dict of fields')
        if self.split_file is None:
            keys = sorted(annos)
        else:
            split_file = self.split_file
            if not osp.isabs(split_file) and self.data_root:
                split_file = osp.join(self.data_root, split_file)
            keys = load_plain_pickle(split_file)
            if not isinstance(keys, (list, tuple)):
                raise ValueError(
                    f'{split_file}: expected a list of (event, clip) keys, '
                    f'got {type(keys).__name__}')
            seen = set()
            for key in keys:
                _check_key(key, split_file)
                if key in seen:
                    raise ValueError(f'{split_file}: key {key!r} is listed '
                                     'twice')
                seen.add(key)
                if key not in annos:
                    raise ValueError(
                        f'{split_file}: key {key!r} has no annotation in '
                        f'{self.ann_file}')
        # numpy ints hash like ints, so lookups work; the data info keeps
        # plain ints.
        return [((int(key[0]), int(key[1])), annos[key]) for key in keys]

    def _load_table(self, ext: str) -> List[Tuple[tuple, dict]]:
        """Read a JSON list or CSV table of records with the same fields."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file {self.ann_file} does not exist')
        if ext == '.json':
            with open(self.ann_file) as f:
                rows = json.load(f)
            if not isinstance(rows, list):
                raise ValueError(
                    f'{self.ann_file}: expected a JSON list of records, got '
                    f'{type(rows).__name__}')
        else:
            with open(self.ann_file, newline='') as f:
                # Empty cells are absent fields, so they fail as missing.
                rows = [{
                    k: _parse_csv_cell(v)
                    for k, v in row.items() if v is not None and v.strip()
                } for row in csv.DictReader(f)]
        records, seen = [], set()
        for i, row in enumerate(rows):
            where = f'{self.ann_file}: record {i}'
            if not isinstance(row, dict):
                raise ValueError(f'{where} is a {type(row).__name__}, '
                                 'expected an object of fields')
            for field in ('event', 'clip'):
                if field not in row:
                    raise ValueError(f'{where} has no field {field!r}')
            key = (_as_int(row['event'], f'{where}, field event'),
                   _as_int(row['clip'], f'{where}, field clip'))
            if key in seen:
                raise ValueError(f'{where}: key {key!r} appears twice')
            seen.add(key)
            records.append((key, row))
        return records

    def _parse_record(self, key: tuple, rec: dict) -> dict:
        """Check the fields of one dive and turn them into a data info."""
        event, clip = key
        where = f'{self.ann_file}: annotation {key!r}'
        for field in _FRAME_FIELDS + tuple(self.properties) + (
            (_SCORE_FIELD, ) if self.with_score else ()):
            if field not in rec:
                raise ValueError(f'{where} has no field {field!r}')
        start = _as_int(rec['start_frame'], f'{where}, field start_frame')
        end = _as_int(rec['end_frame'], f'{where}, field end_frame')
        if start < 0 or end < start:
            raise ValueError(
                f'{where}: needs 0 <= start_frame <= end_frame, got '
                f'start_frame={start}, end_frame={end}')
        info = dict(
            video_id=f'{event:02d}_{clip:02d}',
            event=event,
            clip=clip,
            start_frame=start,
            end_frame=end,
            total_frames=end - start + 1,
            dive_labels={
                name: self._class_id(rec[name], name, where)
                for name in self.properties
            })
        if self.with_score:
            info['score'] = _as_float(rec[_SCORE_FIELD],
                                      f'{where}, field final_score')
        if rec.get('difficulty') is not None:
            info['difficulty'] = _as_float(rec['difficulty'],
                                           f'{where}, field difficulty')
        video = rec.get('video')
        if video is not None and not isinstance(video, str):
            raise ValueError(f'{where}, field video: expected a path, got '
                             f'{video!r}')
        if self.use_frames:
            name = video if video else self.frame_dir_tmpl.format(event)
            info['frame_dir'] = osp.join(self.data_prefix['img'], name)
            info['filename_tmpl'] = self.filename_tmpl
        else:
            name = video if video else self.video_tmpl.format(event)
            info['filename'] = osp.join(self.data_prefix['video'], name)
        return info

    def _class_id(self, value: Any, name: str, where: str) -> int:
        """A property value as a class id, checked against its count."""
        if isinstance(value, str):
            names = self.label_maps.get(name, {})
            if value.lower() not in names:
                raise ValueError(
                    f'{where}, field {name}: unknown name {value!r}; known '
                    f'names are {sorted(names)} (see label_maps)')
            value = names[value.lower()]
        elif isinstance(value, (bool, np.bool_)):
            value = int(value)
        label = _as_int(value, f'{where}, field {name}')
        if not 0 <= label < self.properties[name]:
            raise ValueError(
                f'{where}, field {name}: class id {label} is outside '
                f'[0, {self.properties[name]})')
        return label


def _check_key(key: Any, path: str) -> None:
    if not (isinstance(key, tuple) and len(key) == 2 and all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool)
            for k in key)):
        raise ValueError(
            f'{path}: key {key!r} is not an (event, clip) tuple of ints')


def _as_int(value: Any, where: str) -> int:
    """An integral number (int, numpy int or integral float) as int."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f'{where}: expected an integer, got {value!r}')
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        # Spreadsheet exports store whole numbers as floats.
        return int(value)
    raise ValueError(f'{where}: expected an integer, got {value!r}')


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{where}: expected a number, got {value!r}')
    if not math.isfinite(float(value)):
        raise ValueError(f'{where}: expected a finite number, got {value!r}')
    return float(value)


def _parse_csv_cell(text: str) -> Union[int, float, str]:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
