"""Comparisons of methods over seeds: mean, spread and a confidence
interval of the difference, never one number."""
import math
import statistics
from typing import Dict, Sequence


def seed_summary(values: Sequence[float]) -> Dict:
    """Mean and sample standard deviation of one method's per-seed results.

    Returns:
        dict: ``mean``, ``std`` (0 for one seed), ``values``.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError('no results to summarise')
    return dict(
        mean=statistics.mean(values),
        std=statistics.stdev(values) if len(values) > 1 else 0.0,
        values=values)


def difference_ci(values: Sequence[float],
                  reference: Sequence[float],
                  confidence: float = 0.95) -> Dict:
    """The difference of means ``mean(values) - mean(reference)`` with
    Welch's t confidence interval, seeds as the independent replicates.

    Welch's interval does not assume equal spreads; with 3 seeds per method
    it is wide (t with about 2-4 degrees of freedom), as it should be.
    It covers the randomness of training (initialisation, data order,
    augmentation) on a fixed evaluation set, not the choice of that set.

    Args:
        values (Sequence[float]): Per-seed results of the method.
        reference (Sequence[float]): Per-seed results of the baseline.
        confidence (float): Coverage of the interval.

    Returns:
        dict: ``diff``, ``low``, ``high`` (None with fewer than two seeds
        on a side), ``confidence``, ``excludes_zero`` and ``method``.
    """
    from scipy.stats import t as student_t
    a, b = seed_summary(values), seed_summary(reference)
    out = dict(
        diff=a['mean'] - b['mean'],
        low=None,
        high=None,
        confidence=confidence,
        excludes_zero=False,
        method="Welch's t-interval over seeds")
    na, nb = len(a['values']), len(b['values'])
    if min(na, nb) < 2:
        return out
    va, vb = a['std']**2 / na, b['std']**2 / nb
    se = math.sqrt(va + vb)
    if se == 0:
        # Both methods gave the same result at every seed.
        out.update(low=out['diff'], high=out['diff'])
    else:
        dof = (va + vb)**2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        half = float(student_t.ppf(0.5 + confidence / 2, dof)) * se
        out.update(low=out['diff'] - half, high=out['diff'] + half)
    out['excludes_zero'] = bool(out['low'] > 0 or out['high'] < 0)
    return out
