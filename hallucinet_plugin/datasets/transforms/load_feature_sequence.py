from typing import Dict, Optional, Sequence

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...feature_bank import FeatureBank, window_starts
from ..tfrecord_sequences import (
    frame_features,
    parse_sequence_example,
    read_record,
)


def _check_array(feats: np.ndarray, where: str) -> np.ndarray:
    if feats.ndim != 2 or not len(feats):
        raise ValueError(f'{where}: features of shape {feats.shape}; '
                         'expected (T, D) with T >= 1')
    if not np.issubdtype(feats.dtype, np.floating) and \
            not np.issubdtype(feats.dtype, np.integer):
        raise ValueError(f'{where}: features of dtype {feats.dtype}')
    feats = feats.astype(np.float32)
    if not np.isfinite(feats).all():
        raise ValueError(f'{where}: features hold NaN or inf')
    return feats


@TRANSFORMS.register_module()
class LoadFeatureSequence(BaseTransform):
    """Read each stream's feature sequence of a video.

    Follows :class:`FeatureSequenceDataset`, which records in
    ``feature_streams`` where each stream lies. Step ``t`` must mean the
    same moment in every stream: sequences of ``.npy`` files and TFRecords
    must have equal lengths (an error names the video otherwise), and
    feature banks are aligned by the first frames of their windows: the
    bank with the fewest windows sets the steps (e.g. a 16-frame motion
    bank's windows), the others give the window that starts nearest to
    each (e.g. a 1-frame appearance bank's).

    Required keys: ``video_id``, ``feature_streams``.

    Added keys: one ``(T, D)`` float32 array per stream, under the
    stream's name; ``feature_keys`` (the names), ``total_steps`` (``T``).

    Args:
        streams (Sequence[str], optional): Streams to read; default all the
            dataset has (a test set of a hallucinating model can leave the
            motion stream out).
        cache (bool): Keep each video's sequences in memory after their
            first read (and check), for feature sets that fit in memory
            (the demo's: epochs then cost no reads). Each data-loader
            worker holds its own copy.
    """

    def __init__(self,
                 streams: Optional[Sequence[str]] = None,
                 cache: bool = False) -> None:
        self.streams = None if streams is None else tuple(streams)
        self.cache = cache
        self._cached: Dict[tuple, Dict[str, np.ndarray]] = {}
        # One reader per store: its metadata is parsed once.
        self._banks: Dict[str, FeatureBank] = {}

    @staticmethod
    def _read(name: str, spec: Dict) -> np.ndarray:
        kind = spec['type']
        if kind == 'npy':
            where = spec['path']
            try:
                # Memory-mapped first: a header that claims more data than
                # the file holds is refused, not allocated.
                feats = np.array(
                    np.load(where, mmap_mode='r', allow_pickle=False))
            except (OSError, ValueError, MemoryError) as err:
                raise ValueError(f'{where}: cannot read the {name} features '
                                 f'({err})') from err
        else:
            path, offset = spec['record']
            where = f'{path} (record at byte {offset})'
            feats = frame_features(
                parse_sequence_example(read_record(path, offset), where),
                spec['feature'], where, spec['dequantize'])
        return _check_array(feats, where)

    def _read_banks(self, banks: Dict[str, Dict], video_id: str) -> Dict:
        """Banks aligned on the starts of the one with fewest windows."""
        stores = {
            name: self._banks.setdefault(s['store'], FeatureBank(s['store']))
            for name, s in banks.items()
        }
        tracks = {name: b.get(video_id) for name, b in stores.items()}
        base = min(tracks, key=lambda name: len(tracks[name][1]))
        meta = stores[base].meta
        starts = window_starts(tracks[base][0], meta['clip_len'],
                               meta['frame_interval'], meta['stride'])
        out = {base: tracks[base][1]}
        for name, bank in stores.items():
            if name != base:
                out[name] = bank.lookup(video_id, starts)[0]
        return {
            name: _check_array(feats, f'{stores[name].path}[{video_id}]')
            for name, feats in out.items()
        }

    def transform(self, results: Dict) -> Dict:
        available = results['feature_streams']
        names = self.streams or tuple(available)
        missing = [n for n in names if n not in available]
        if missing:
            raise KeyError(f'LoadFeatureSequence: streams {missing} are not '
                           f'in the dataset (it has {sorted(available)})')
        key = (results['video_id'], names)
        feats = self._cached.get(key) if self.cache else None
        if feats is None:
            feats = self._read_video(available, names, results['video_id'])
            if self.cache:
                self._cached[key] = feats
        if self.cache:
            # Copies: later transforms must not change what is cached.
            feats = {name: f.copy() for name, f in feats.items()}
        results.update(feats)
        results['feature_keys'] = names
        results['total_steps'] = len(feats[names[0]])
        return results

    def _read_video(self, available: Dict, names: Sequence[str],
                    video_id: str) -> Dict[str, np.ndarray]:
        banks = {n: available[n] for n in names
                 if available[n]['type'] == 'bank'}
        feats = self._read_banks(banks, video_id) if banks else {}
        for name in names:
            if name not in banks:
                feats[name] = self._read(name, available[name])
        lengths = {name: len(f) for name, f in feats.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f'video {video_id!r}: its streams have different numbers of '
                f'steps {lengths}; step t must be the same moment in all')
        return feats

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(streams={self.streams}, '
                f'cache={self.cache})')
