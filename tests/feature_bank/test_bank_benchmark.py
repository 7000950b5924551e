"""``deploy/bank_benchmark.py``: training from the bank timed against
the online teacher and the vanilla student, on the store of the
``bank_setup`` fixture (tests/conftest.py). It moves with the benchmark
(issue #27)."""
import copy

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
from hallucinet_plugin.deploy.bank_benchmark import (
    bank_benchmark,
    format_bank_report,
    training_speed,
)
from hallucinet_plugin.feature_bank.store import FeatureBank
from tests.feature_bank.bank_utils import (
    STUDENT_DIM,
    model_config,
    online_pipeline,
)

init_default_scope('mmaction')


def test_bank_benchmark(bank_setup):
    """``tools/benchmark.py --training``'s measurements, on real training:
    three runs timed by mmengine, extraction against the bare forward."""
    train = dict(
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=1))
    online = Config.fromfile(bank_setup['cfg'])
    online.merge_from_dict(train)
    vanilla = copy.deepcopy(online)
    vanilla.model = model_config()
    vanilla.model.pop('hallu_head')
    vanilla.model['cls_head']['in_channels'] = STUDENT_DIM
    pipeline = online_pipeline()
    pipeline[1]['with_teacher'] = False
    pipeline[3]['teacher_scale'] = None
    pipeline[-1]['collect_keys'] = ('imgs', )
    vanilla.train_dataloader.dataset.pipeline = pipeline
    messages = []
    result = bank_benchmark(
        vanilla,
        online,
        bank_setup['stores']['default'],
        iters=3,
        warmup=1,
        rounds=2,
        log=messages.append)
    assert set(result['training']) == {
        'vanilla', 'online teacher', 'feature bank'
    }
    for row in result['training'].values():
        assert row['iters'] == 6 and len(row['rounds']) == 2
        assert row['iters_per_s'] == pytest.approx(1 / row['s_per_iter'])
        assert 0 <= row['data_s_per_iter'] < row['s_per_iter']
    rate = {k: v['iters_per_s'] for k, v in result['training'].items()}
    assert result['ratios']['feature bank / vanilla'] == pytest.approx(
        rate['feature bank'] / rate['vanilla'])
    ext = result['extraction']
    stored = FeatureBank(bank_setup['stores']['default'])
    assert ext['clips'] == sum(len(stored.get(k)[1]) for k in stored.keys())
    assert ext['videos'] == len(stored)
    assert ext['ratio'] == pytest.approx(ext['extract_clips_per_s'] /
                                         ext['forward_clips_per_s'])
    # Each ratio within each round (the spread shown), extraction twice.
    rounds = result['ratio_rounds']['feature bank / vanilla']
    assert rounds == pytest.approx([
        b / v for b, v in zip(result['training']['feature bank']['rounds'],
                              result['training']['vanilla']['rounds'])
    ])
    assert len(ext['rounds']) == 2
    assert ext['teacher_build_s'] > 0
    assert ext['ratio_without_build'] > ext['ratio']
    assert min(ext['rounds']) <= ext['ratio'] * 1.0001
    report = format_bank_report(result)
    low, high = min(rounds), max(rounds)
    assert f'| feature bank / vanilla | ' \
        f"{result['ratios']['feature bank / vanilla']:.2f} | " \
        f'{low:.2f}-{high:.2f} |' in report
    # Two interleaved rounds, the second in reverse order, then extraction.
    assert [m.split(': ')[1].split(' (')[0] for m in messages[:6]] == [
        'vanilla', 'online teacher', 'feature bank', 'feature bank',
        'online teacher', 'vanilla'
    ]
    assert len(messages) == 8


def test_training_speed_never_waits_for_an_epoch_end(bank_setup):
    """mmengine's iteration loop sleeps 2 s whenever the data-loader
    iterator runs out; the measurement uses an endless sampler, so a batch
    holding the whole training set (an epoch per iteration) is not charged
    those sleeps as data wait."""
    cfg = Config.fromfile(bank_setup['cfg'])
    cfg.merge_from_dict(
        dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01))))
    with open(cfg.train_dataloader.dataset.ann_file) as f:
        videos = sum(1 for line in f if line.strip())
    cfg.train_dataloader.batch_size = videos
    result = training_speed(cfg, iters=2, warmup=1)
    assert result['data_s_per_iter'] < 1.0, result
