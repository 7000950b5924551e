from typing import Dict, Optional

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...feature_bank import FeatureBank


@TRANSFORMS.register_module()
class LoadTeacherFeatures(BaseTransform):
    """Read the teacher targets of the sampled clips from a feature bank.

    Replaces the online teacher (see :mod:`hallucinet_plugin.
    feature_bank`): after :class:`HalluSampleFrames` (with
    ``with_teacher=False``, so only student frames are decoded), each
    segment's ``clip_starts`` picks the bank window that starts nearest to
    that frame; a tie (a start exactly between two windows) goes to the
    earlier window, and starts after a video's last window get the last one.
    The picked clip thus starts at most ``stride // 2`` frames from the
    sampled one (2 at the default stride for 16-frame clips), and at most
    ``stride - 1`` for the last few starts of a video. Pack with
    ``PackActionInputs(collect_keys=('imgs', 'teacher_feats'))``.

    The store is opened at the first call, read-only and once per process
    (safe in data-loader workers).

    Required keys: ``filename``, ``clip_starts``; ``start_index``
    (optional, default 0), ``frame_interval`` (optional, checked against
    the bank).

    Added keys:
        - teacher_feats (np.ndarray): ``(S, D)`` float32 targets.
        - teacher_clip_starts (np.ndarray): ``(S, )`` first frame (in the
          decoder's numbering) of the bank clip each target comes from.

    Args:
        store (str): The feature bank (a folder written by
            ``tools/extract_teacher_features.py``).
        data_prefix (str, optional): The dataset's ``data_prefix['video']``;
            the bank's keys are paths relative to it. None tries the
            prefixes recorded at extraction.
        clip_len (int, optional): The pipeline's ``HalluSampleFrames``
            ``clip_len``; when given, a bank of other clips is refused.
        frame_interval (int, optional): Likewise for ``frame_interval``
            (also checked against ``results['frame_interval']``).
    """

    def __init__(self,
                 store: str,
                 data_prefix: Optional[str] = None,
                 clip_len: Optional[int] = None,
                 frame_interval: Optional[int] = None) -> None:
        self.store = store
        self.data_prefix = data_prefix
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.bank = FeatureBank(store)

    def _check(self, meta: Dict, results: Dict) -> None:
        # HalluSampleFrames reports its interval; its clip_len key is the
        # student frames per segment, so the teacher's comes from the args.
        sampled = [('clip_len', self.clip_len),
                   ('frame_interval', self.frame_interval),
                   ('frame_interval', results.get('frame_interval'))]
        for name, value in sampled:
            if value is not None and value != meta[name]:
                raise ValueError(
                    f'teacher feature bank {self.store} holds clips with '
                    f'{name}={meta[name]} but the pipeline samples '
                    f'{name}={value}: extract a bank with the same '
                    'HalluSampleFrames settings')

    def transform(self, results: Dict) -> Dict:
        if 'clip_starts' not in results:
            raise KeyError('LoadTeacherFeatures needs clip_starts: put it '
                           'after HalluSampleFrames')
        self._check(self.bank.meta, results)
        key = self.bank.key_of(results['filename'], self.data_prefix)
        offset = results.get('start_index', 0)
        starts = [s + offset for s in np.asarray(
            results['clip_starts']).reshape(-1).tolist()]
        feats, used = self.bank.lookup(key, starts)
        results['teacher_feats'] = feats
        results['teacher_clip_starts'] = used
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(store={self.store!r}, '
                f'data_prefix={self.data_prefix!r}, '
                f'clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval})')
