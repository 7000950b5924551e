"""MixedSourceSampler on real mmengine ConcatDatasets: the ratio in every
batch, one pass over the labelled source per epoch, determinism, resume
(an epoch's indices depend only on the seed and the epoch) and DDP
sharding under a real torchrun with gloo."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from mmaction.registry import DATA_SAMPLERS
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from tests.conftest import REPO

init_default_scope('mmaction')


class Indices(BaseDataset):
    """A dataset whose samples are their own indices."""

    def __init__(self, size: int):
        self.size = size
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=i) for i in range(self.size)]


def concat(*sizes):
    return ConcatDataset([Indices(n) for n in sizes])


def sampler(sizes=(10, 25), batch_size=6, ratio=(1, 2), **kwargs):
    return DATA_SAMPLERS.build(
        dict(
            type='MixedSourceSampler',
            batch_size=batch_size,
            source_ratio=list(ratio),
            **kwargs),
        default_args=dict(dataset=concat(*sizes), seed=kwargs.pop('seed', 7)))


def batches(s, epoch):
    s.set_epoch(epoch)
    out = list(s)
    assert len(out) == len(s)
    return [out[i:i + s.batch_size] for i in range(0, len(out), s.batch_size)]


def test_every_batch_holds_the_ratio_and_the_labelled_set_once():
    s = sampler(sizes=(10, 25), batch_size=6, ratio=(1, 2))
    assert s.num_per_source == [2, 4]
    for epoch in range(3):
        labelled = []
        for batch in batches(s, epoch):
            assert len(batch) == 6
            # Sources in order: 2 labelled (0-9), then 4 unlabelled.
            assert all(i < 10 for i in batch[:2]), batch
            assert all(10 <= i < 35 for i in batch[2:]), batch
            labelled += batch[:2]
        # 10 labelled samples in batches of 2: each exactly once.
        assert sorted(labelled) == list(range(10))


def test_labelled_epoch_rounds_up_like_the_default_sampler():
    s = sampler(sizes=(5, 8), batch_size=4, ratio=(1, 1))
    got = batches(s, 0)
    assert len(got) == 3
    labelled = [i for b in got for i in b[:2]]
    # 5 samples fill 6 places: one repeats, all appear.
    assert set(labelled) == set(range(5)) and len(labelled) == 6


def test_unlabelled_samples_are_used_equally_over_epochs():
    s = sampler(sizes=(6, 20), batch_size=4, ratio=(1, 1))
    seen = Counter()
    for epoch in range(10):
        for batch in batches(s, epoch):
            seen.update(i - 6 for i in batch[2:])
    # 10 epochs x 3 batches x 2 = 60 draws of 20 samples: 3 each.
    assert sorted(seen) == list(range(20))
    assert set(seen.values()) == {3}


def test_deterministic_and_resumable():
    a, b = sampler(seed=3), sampler(seed=3)
    # b jumps straight to epoch 4 (a resumed run); a went through 0-3.
    for epoch in range(4):
        batches(a, epoch)
    assert batches(a, 4) == batches(b, 4)
    # A new order every epoch, for the labelled source too.
    first = [b[:2] for b in batches(a, 4)]
    assert first != [b[:2] for b in batches(a, 5)]
    assert batches(sampler(seed=3), 0) != batches(sampler(seed=4), 0)


def test_without_shuffle_sources_come_in_order():
    s = sampler(sizes=(4, 6), batch_size=4, ratio=(1, 1), shuffle=False)
    assert batches(s, 0) == [[0, 1, 4, 5], [2, 3, 6, 7]]
    # The unlabelled stream continues where the last epoch stopped.
    assert batches(s, 1) == [[0, 1, 8, 9], [2, 3, 4, 5]]


@pytest.mark.parametrize('kwargs, message', [
    (dict(ratio=(1, 2, 3)), 'has 3 entries for 2 sources'),
    (dict(ratio=(1, 0)), 'must be positive'),
    (dict(sizes=(4, 4, 4), batch_size=2, ratio=(1, 1, 1)), 'too small'),
    (dict(sizes=(4, 0)), 'empty'),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sampler(**kwargs)


def test_needs_a_concat_dataset():
    with pytest.raises(TypeError, match='ConcatDataset'):
        DATA_SAMPLERS.build(
            dict(type='MixedSourceSampler', batch_size=4),
            default_args=dict(dataset=Indices(4), seed=0))


SCRIPT = textwrap.dedent('''
    import json, sys
    import torch.distributed as dist
    dist.init_process_group('gloo')
    sys.path.insert(0, {repo!r})
    from tests.datasets.samplers.test_mixed_source_sampler import sampler
    s = sampler(sizes=(10, 25), batch_size=6, ratio=(1, 2), seed=5)
    out = {{e: list((s.set_epoch(e), list(s))[1]) for e in range(2)}}
    with open({out!r} + f'/rank{{dist.get_rank()}}.json', 'w') as f:
        json.dump(out, f)
    dist.destroy_process_group()
''')


def test_ddp_shards_are_disjoint_and_cover_the_labelled_set(tmp_path):
    script = tmp_path / 'shard.py'
    script.write_text(SCRIPT.format(repo=REPO, out=str(tmp_path)))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node', '2',
        str(script)
    ], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = []
    for rank in range(2):
        with open(osp.join(tmp_path, f'rank{rank}.json')) as f:
            ranks.append(json.load(f))
    for epoch in ('0', '1'):
        # 10 labelled samples, 2 per batch and rank: 3 steps (rounded up).
        steps = [[r[epoch][i:i + 6] for i in range(0, len(r[epoch]), 6)]
                 for r in ranks]
        assert len(steps[0]) == len(steps[1]) == 3
        labelled = []
        for step in zip(*steps):
            for batch in step:
                assert all(i < 10 for i in batch[:2])
                assert all(i >= 10 for i in batch[2:])
            # The two ranks' halves of a step never share a sample.
            unlabelled = [i for batch in step for i in batch[2:]]
            assert len(set(unlabelled)) == len(unlabelled) == 8
            assert not set(step[0][:2]) & set(step[1][:2])
            labelled += [i for batch in step for i in batch[:2]]
        assert set(labelled) == set(range(10))
