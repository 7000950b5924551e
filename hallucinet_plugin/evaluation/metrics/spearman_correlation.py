from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from scipy.stats import rankdata


def spearman_correlation(pred: Sequence[float],
                         target: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of average ranks
(scipy's ``rankdata``), with the inputs checked.

    Args:
        pred (Sequence[float]): Predicted scores, shape (n, ).
        target (Sequence[float]): True scores, shape (n, ).

    Returns:
        float: Correlation in [-1, 1]; NaN when either side is constant
        (the correlation is undefined).
    """
    pred = np.asarray(pred, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if pred.shape != target.shape:
        raise ValueError(f'{pred.size} predictions but {target.size} '
                         'targets')
    if pred.size < 2:
        raise ValueError('rank correlation needs at least 2 samples, got '
                         f'{pred.size}')
    if not (np.isfinite(pred).all() and np.isfinite(target).all()):
        raise ValueError('scores must be finite (no NaN or inf)')
    rp = rankdata(pred) - (pred.size + 1) / 2.0
    rt = rankdata(target) - (pred.size + 1) / 2.0
    denom = np.sqrt((rp * rp).sum() * (rt * rt).sum())
    if denom == 0:
        return float('nan')
    return float((rp * rt).sum() / denom)


@METRICS.register_module()
class SpearmanCorrelation(BaseMetric):
    """Spearman's rank correlation of predicted and true quality scores.

    Reported in percent, as action quality assessment papers do (MTL-AQA,
    HalluciNet), under ``aqa/spearman``.

    Args:
        pred_key (str): Data-sample field with the predicted score.
        gt_key (str): Data-sample field with the true score.
        collect_device (str): Device to gather results on.
        prefix (str, optional): Key prefix; defaults to ``'aqa'``.
    """

    default_prefix: Optional[str] = 'aqa'

    def __init__(self,
                 pred_key: str = 'pred_quality',
                 gt_key: str = 'score',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.pred_key = pred_key
        self.gt_key = gt_key

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep the predicted and true score of each sample.

        Args:
            data_batch (Any): Unused.
            data_samples (Sequence[dict]): Model outputs, as dicts or data
                samples with ``pred_key`` and ``gt_key``.
        """
        for sample in data_samples:
            values = []
            for key in (self.pred_key, self.gt_key):
                value = sample.get(key)
                if value is None:
                    raise KeyError(
                        f'SpearmanCorrelation: a data sample has no '
                        f'{key!r}; it needs {self.pred_key!r} and '
                        f'{self.gt_key!r}')
                values.append(_scalar(value, key))
            self.results.append(tuple(values))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Spearman's rho in percent over all results."""
        pred, target = zip(*results) if results else ((), ())
        rho = spearman_correlation(pred, target)
        if np.isnan(rho):
            print_log(
                'SpearmanCorrelation: predicted or true scores are all '
                'equal, the rank correlation is undefined (NaN)',
                logger='current',
                level=30)
        return dict(spearman=rho * 100)


def _scalar(value: Any, key: str) -> float:
    array = np.asarray(
        value.detach().cpu() if hasattr(value, 'detach') else value,
        dtype=np.float64)
    if array.size != 1:
        raise ValueError(f'SpearmanCorrelation: {key!r} must be one number '
                         f'per sample, got shape {array.shape}')
    return float(array.reshape(()))
