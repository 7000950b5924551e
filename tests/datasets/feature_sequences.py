"""Small feature-sequence datasets for the tests: per-video ``.npy``
streams, feature banks and YouTube-8M-style TFRecords."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from mmaction.registry import DATASETS

from hallucinet_plugin.datasets.tfrecord_sequences import (
    write_sequence_records,
)


def write_npy_streams(root: str,
                      labels: Sequence,
                      dims: Dict[str, int],
                      lengths: Sequence[int] = None,
                      seed: int = 0) -> Dict:
    """``root/<stream>/v<i>.npy`` of shape ``(T_i, dim)`` and an annotation
    list ``root/list.txt``; a class's features lean towards its label, so a
    model can learn them.

    Returns:
        dict: ``ann_file`` and ``streams`` (dataset configs).
    """
    rng = np.random.default_rng(seed)
    lengths = lengths or [10 + i % 3 for i in range(len(labels))]
    for stream in dims:
        os.makedirs(osp.join(root, stream), exist_ok=True)
    lines = []
    for i, (label, steps) in enumerate(zip(labels, lengths)):
        first = label[0] if isinstance(label, (list, tuple)) else label
        for stream, dim in dims.items():
            feats = rng.normal(size=(steps, dim)).astype(np.float32)
            feats[:, first % dim] += 3.0
            np.save(osp.join(root, stream, f'v{i}.npy'), feats)
        names = label if isinstance(label, (list, tuple)) else [label]
        lines.append(f'v{i} ' + ' '.join(str(x) for x in names))
    ann_file = osp.join(root, 'list.txt')
    with open(ann_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(
        ann_file=ann_file,
        streams={
            stream: dict(type='npy', prefix=osp.join(root, stream))
            for stream in dims
        })


def write_records(path: str, labels: Sequence[Sequence[int]],
                  lengths: Sequence[int], seed: int = 0,
                  dims=(('rgb', 16), ('audio', 4))) -> Dict[str, Dict]:
    """YouTube-8M-style frame-level records; returns the uint8 features by
    video id."""
    rng = np.random.default_rng(seed)
    videos = []
    for i, (label, steps) in enumerate(zip(labels, lengths)):
        video = dict(id=f'yt{i}', labels=list(label))
        for name, dim in dims:
            video[name] = rng.integers(0, 256, (steps, dim), np.uint8)
        videos.append(video)
    write_sequence_records(path, videos)
    return {v['id']: v for v in videos}


def sequence_pipeline(streams=('appearance', 'motion'), num_steps=4,
                      test_mode=False):
    """Read, sample and pack the feature streams."""
    return [
        dict(type='LoadFeatureSequence', streams=streams),
        dict(
            type='SampleFeatureSequence',
            num_steps=num_steps,
            test_mode=test_mode),
        dict(type='PackActionInputs', collect_keys=streams)
    ]


def build_dataset(**kwargs):
    """A ``FeatureSequenceDataset`` (default pipeline: all streams)."""
    kwargs.setdefault('pipeline', sequence_pipeline())
    return DATASETS.build(dict(type='FeatureSequenceDataset', **kwargs))
