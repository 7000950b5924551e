"""``utils/seed_statistics.py``: per-seed summaries and Welch's interval of
a difference of means, against scipy's own Welch test."""
import pytest
from scipy import stats

from hallucinet_plugin.utils import difference_ci, seed_summary

# The demo's per-seed accuracies (README): HalluciNet and vanilla.
HALLUCINET = [29.2, 31.7, 27.1]
VANILLA = [16.7, 22.5, 18.8]


def test_seed_summary():
    summary = seed_summary(VANILLA)
    assert summary['mean'] == pytest.approx(19.333333)
    assert summary['std'] == pytest.approx(2.936551, rel=1e-6)
    assert summary['values'] == VANILLA
    assert seed_summary([3])['std'] == 0.0
    with pytest.raises(ValueError, match='no results'):
        seed_summary([])


@pytest.mark.parametrize('confidence', [0.9, 0.95, 0.99])
def test_welch_interval_matches_scipy(confidence):
    ci = difference_ci(HALLUCINET, VANILLA, confidence)
    welch = stats.ttest_ind(HALLUCINET, VANILLA, equal_var=False)
    low, high = welch.confidence_interval(confidence)
    assert ci['diff'] == pytest.approx(29.333333 - 19.333333)
    assert (ci['low'], ci['high']) == pytest.approx((low, high))
    assert ci['excludes_zero'] is bool(low > 0 or high < 0)
    assert ci['confidence'] == confidence


def test_overlapping_seeds_do_not_exclude_zero():
    ci = difference_ci([20.0, 25.0, 18.0], [19.0, 24.0, 21.0])
    assert ci['low'] < 0 < ci['high']
    assert ci['excludes_zero'] is False


def test_one_seed_gives_no_interval_and_equal_seeds_a_point():
    ci = difference_ci([30.0], VANILLA)
    assert ci['diff'] == pytest.approx(30 - 19.333333)
    assert ci['low'] is None and ci['high'] is None
    assert ci['excludes_zero'] is False
    same = difference_ci([2.0, 2.0], [1.0, 1.0])
    assert same['low'] == same['high'] == 1.0
    assert same['excludes_zero'] is True
