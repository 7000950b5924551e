from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric


@METRICS.register_module()
class DivePropertyAccuracy(BaseMetric):
    """Top-1 accuracy, in percent, of each dive property.

    Reads the predictions :class:`DiveLSTMHead` writes
    (``pred_dive_scores``, dict name -> class scores) and the ground truth
    ``dive_labels`` (dict name -> class id), and reports
    ``acc/<property>``, e.g. ``acc/position``, as MTL-AQA reports them.

    Args:
        properties (Sequence[str], optional): Properties to score; None
            scores every property of the first prediction.
        pred_key (str): Data-sample field with the class scores.
        gt_key (str): Data-sample field with the class ids.
        collect_device (str): Device to gather results on.
        prefix (str, optional): Key prefix; defaults to ``'acc'``.
    """

    default_prefix: Optional[str] = 'acc'

    def __init__(self,
                 properties: Optional[Sequence[str]] = None,
                 pred_key: str = 'pred_dive_scores',
                 gt_key: str = 'dive_labels',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.properties = None if properties is None else list(properties)
        self.pred_key = pred_key
        self.gt_key = gt_key

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep the predicted and true class of each property and sample.

        Args:
            data_batch (Any): Unused.
            data_samples (Sequence[dict]): Model outputs, as dicts or data
                samples with ``pred_key`` and ``gt_key``.
        """
        for sample in data_samples:
            pred, gt = sample.get(self.pred_key), sample.get(self.gt_key)
            for key, value in ((self.pred_key, pred), (self.gt_key, gt)):
                if value is None:
                    raise KeyError(
                        f'DivePropertyAccuracy: a data sample has no '
                        f'{key!r}; it needs {self.pred_key!r} and '
                        f'{self.gt_key!r}')
            if self.properties is None:
                self.properties = list(pred)
            result = dict()
            for name in self.properties:
                if name not in pred or name not in gt:
                    raise KeyError(
                        f'DivePropertyAccuracy: property {name!r} missing '
                        f'from {self.pred_key} ({sorted(pred)}) or '
                        f'{self.gt_key} ({sorted(gt)}) of a data sample')
                result[name] = (_argmax(pred[name]), int(gt[name]))
            self.results.append(result)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Accuracy of each property, in percent."""
        if not results:
            raise ValueError('DivePropertyAccuracy: no results to evaluate')
        metrics = dict()
        for name in results[0]:
            pred, gt = np.array([r[name] for r in results]).T
            metrics[name] = float((pred == gt).mean() * 100)
        return metrics


def _argmax(scores: Any) -> int:
    array = np.asarray(
        scores.detach().cpu() if hasattr(scores, 'detach') else scores)
    if array.ndim != 1:
        raise ValueError('DivePropertyAccuracy: class scores must have shape '
                         f'(num_classes, ), got {array.shape}')
    return int(array.argmax())
