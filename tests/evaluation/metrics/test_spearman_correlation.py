import math

import numpy as np
import pytest
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import Evaluator
from scipy import stats

import hallucinet_plugin.evaluation.metrics.spearman_correlation  # noqa
from hallucinet_plugin.evaluation.metrics.spearman_correlation import (
    spearman_correlation,
)


@pytest.mark.parametrize('seed', range(10))
def test_spearman_matches_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60))
    pred, target = rng.normal(size=n), rng.normal(size=n)
    assert spearman_correlation(pred, target) == pytest.approx(
        stats.spearmanr(pred, target).statistic, abs=1e-12)
    # Quantised scores, as judges' scores are, tie a lot on both sides.
    pred_t = np.round(pred * 2) / 2
    target_t = np.round(target + 0.5 * pred)
    assert spearman_correlation(pred_t, target_t) == pytest.approx(
        stats.spearmanr(pred_t, target_t).statistic, abs=1e-12)


def test_spearman_perfect_inverse_and_monotone():
    x = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    assert spearman_correlation(x, x) == pytest.approx(1.0)
    assert spearman_correlation(x, -x) == pytest.approx(-1.0)
    # Ranks only: any increasing transform keeps rho = 1.
    assert spearman_correlation(x, np.exp(x) + 7) == pytest.approx(1.0)


def test_spearman_undefined_and_bad_inputs():
    assert math.isnan(spearman_correlation([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match='at least 2'):
        spearman_correlation([1.0], [2.0])
    with pytest.raises(ValueError, match='3 predictions but 2'):
        spearman_correlation([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match='finite'):
        spearman_correlation([1, float('nan'), 3], [1, 2, 3])


def _sample(pred, score):
    sample = ActionDataSample(metainfo=dict(score=score))
    sample.set_field(torch.tensor(pred), 'pred_quality')
    return sample


def test_metric_in_percent_through_mmengine_evaluator():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=12)
    target = np.round(pred + rng.normal(size=12), 1) * 10
    evaluator = Evaluator(METRICS.build(dict(type='SpearmanCorrelation')))
    # Two batches, as a val loop would feed them.
    for lo, hi in ((0, 5), (5, 12)):
        evaluator.process(
            [_sample(p, float(t)) for p, t in zip(pred[lo:hi],
                                                  target[lo:hi])])
    metrics = evaluator.evaluate(12)
    assert set(metrics) == {'aqa/spearman'}
    assert metrics['aqa/spearman'] == pytest.approx(
        100 * stats.spearmanr(pred, target).statistic)


def test_metric_custom_keys_and_errors():
    metric = METRICS.build(
        dict(type='SpearmanCorrelation', pred_key='p', gt_key='t'))
    metric.process(None, [dict(p=1.0, t=3.0), dict(p=2.0, t=2.0),
                          dict(p=3.0, t=1.0)])
    assert metric.evaluate(3) == {'aqa/spearman': pytest.approx(-100.0)}
    with pytest.raises(KeyError, match="'pred_quality'"):
        METRICS.build(dict(type='SpearmanCorrelation')).process(
            None, [dict(score=1.0)])
    with pytest.raises(ValueError, match='one number'):
        METRICS.build(dict(type='SpearmanCorrelation')).process(
            None, [dict(pred_quality=torch.ones(2), score=1.0)])
