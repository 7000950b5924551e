"""YouTube-8M's video-level metrics: Hit@1, PERR, GAP@k and MAP@k.

Definitions follow Abu-El-Haija et al., "YouTube-8M: A Large-Scale Video
Classification Benchmark" (2016), and the official starter code
(github.com/google/youtube-8m, ``eval_util.py``), as MoNet (Tang et al.,
IJCAI 2019, Table 4) reports them.

Rankings are stable, so every number is deterministic: within a video, tied
scores rank the lower class index first (as ``numpy.argmax`` does); in the
pooled GAP list and in each class's MAP list, tied scores rank the earlier
video first, then the lower class index. The starter code instead orders
tied entries by a seeded shuffle; the two agree whenever scores are
distinct.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric

METRIC_NAMES = ('hit@1', 'perr', 'gap', 'map')
LABEL_FORMATS = ('auto', 'index', 'multi_hot')


def _check_inputs(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError('scores must have shape (num_videos, num_classes) '
                         f'with both > 0, got {scores.shape}')
    if labels.shape != scores.shape:
        raise ValueError(f'labels have shape {labels.shape}, scores '
                         f'{scores.shape}; they must match')
    if not np.isin(labels, (0, 1)).all():
        raise ValueError('labels must be multi-hot: every value 0 or 1')
    if np.isnan(scores).any():
        raise ValueError('scores must not be NaN: they cannot be ranked')
    return scores, labels.astype(bool)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of each class within its video, ties by class index."""
    order = np.argsort(-scores, axis=1, kind='stable')
    ranks = np.empty_like(order)
    np.put_along_axis(
        ranks, order, np.broadcast_to(np.arange(scores.shape[1]),
                                      scores.shape), axis=1)
    return ranks


def top_k_mask(scores: Any, top_k: int) -> np.ndarray:
    """Which classes are among each video's ``top_k`` highest scores.

    Args:
        scores (array_like): Class scores, shape (N, C).
        top_k (int): Predictions kept per video; ``min(top_k, C)`` are kept,
            tied scores keeping the lower class index.

    Returns:
        np.ndarray: Bool mask, shape (N, C), ``min(top_k, C)`` True per row.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) \
            or top_k < 1:
        raise ValueError(f'top_k must be a positive integer, got {top_k!r}')
    scores = np.asarray(scores, dtype=np.float64)
    return _ranks(scores) < min(int(top_k), scores.shape[1])


def hit_at_one(scores: Any, labels: Any) -> float:
    """Fraction of videos whose top-scored class is one of their labels.

    A video without labels counts as a miss, as in the starter code.

    Args:
        scores (array_like): Class scores, shape (N, C).
        labels (array_like): Multi-hot ground truth, shape (N, C), 0 or 1.

    Returns:
        float: Hit@1 in [0, 1].
    """
    scores, labels = _check_inputs(scores, labels)
    # argmax takes the first maximum: ties go to the lower class index.
    top = scores.argmax(axis=1)
    return float(labels[np.arange(len(labels)), top].mean())


def perr(scores: Any, labels: Any) -> float:
    """Precision at equal recall rate, averaged over labelled videos.

    A video with k > 0 labels scores the precision of its k top-scored
    classes. Videos without labels are left out of the mean, as the paper
    defines it; the starter code divides by all videos instead (and counts
    only positive scores as hits), which differs only when some video has
    no label or a label scores <= 0.

    Args:
        scores (array_like): Class scores, shape (N, C).
        labels (array_like): Multi-hot ground truth, shape (N, C), 0 or 1.

    Returns:
        float: PERR in [0, 1].

    Raises:
        ValueError: No video has a label.
    """
    scores, labels = _check_inputs(scores, labels)
    num_labels = labels.sum(axis=1)
    labelled = num_labels > 0
    if not labelled.any():
        raise ValueError('PERR needs at least one video with a label')
    hits = (labels & (_ranks(scores) < num_labels[:, None])).sum(axis=1)
    return float((hits[labelled] / num_labels[labelled]).mean())


def _grouped_average_precision(group: np.ndarray, score: np.ndarray,
                               relevant: np.ndarray,
                               num_positives: np.ndarray) -> np.ndarray:
    """Non-interpolated AP of each group's ranked list.

    Args:
        group (np.ndarray): Group of each entry, shape (M, ), in [0, G).
        score (np.ndarray): Score of each entry, shape (M, ); ties keep the
            entries' given order.
        relevant (np.ndarray): Whether each entry is a positive, (M, ).
        num_positives (np.ndarray): Positives of each group, including
            those not among the entries, shape (G, ), all > 0.

    Returns:
        np.ndarray: AP of each group, shape (G, ).
    """
    # Sorted by group, then score descending, then given position.
    order = np.lexsort((np.arange(score.size), -score, group))
    group, relevant = group[order], relevant[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, group.size])
    hits = np.cumsum(relevant)
    hits_before = np.repeat(np.r_[0.0, hits][starts], lengths)
    rank = np.arange(group.size) - np.repeat(starts, lengths) + 1
    precision = (hits - hits_before) / rank
    sums = np.bincount(group, weights=precision * relevant,
                       minlength=num_positives.size)
    return sums / num_positives


def _top_k_entries(scores: np.ndarray, labels: np.ndarray, top_k: int):
    """(video, class, score, relevant) of each video's top-k predictions."""
    videos, classes = np.nonzero(top_k_mask(scores, top_k))  # row-major
    return (videos, classes, scores[videos, classes],
            labels[videos, classes])


def gap_at_k(scores: Any, labels: Any, top_k: int = 20) -> float:
    """Global average precision of all videos' top-k predictions.

    Each video's ``top_k`` (class, score) pairs are pooled and ranked by
    score; AP = sum_i precision(i) rel(i) / P, where P counts every label
    of every video, so a positive outside its video's top-k costs recall.

    Args:
        scores (array_like): Class scores, shape (N, C).
        labels (array_like): Multi-hot ground truth, shape (N, C), 0 or 1.
        top_k (int): Predictions kept per video (``min(top_k, C)``).

    Returns:
        float: GAP@k in [0, 1].

    Raises:
        ValueError: No video has a label.
    """
    scores, labels = _check_inputs(scores, labels)
    num_positives = labels.sum()
    if num_positives == 0:
        raise ValueError('GAP needs at least one video with a label')
    _, _, score, relevant = _top_k_entries(scores, labels, top_k)
    return float(_grouped_average_precision(
        np.zeros(score.size, dtype=np.int64), score, relevant,
        np.array([num_positives], dtype=np.float64))[0])


def map_at_k(scores: Any, labels: Any, top_k: int = 20) -> float:
    """Mean over classes of the AP of the videos predicting them in top-k.

    For class c, the videos with c among their ``top_k`` predictions are
    ranked by c's score; AP_c = sum_i precision(i) rel(i) / P_c, where P_c
    counts all videos labelled c. Classes without any positive video are
    left out of the mean (their AP is 0 / 0), as the starter code's
    ``MeanAveragePrecisionCalculator`` does by default; a class with
    positives that no video ranks in its top-k counts with AP 0.

    Args:
        scores (array_like): Class scores, shape (N, C).
        labels (array_like): Multi-hot ground truth, shape (N, C), 0 or 1.
        top_k (int): Predictions kept per video (``min(top_k, C)``).

    Returns:
        float: MAP@k in [0, 1].

    Raises:
        ValueError: No video has a label.
    """
    scores, labels = _check_inputs(scores, labels)
    num_positives = labels.sum(axis=0).astype(np.float64)
    present = num_positives > 0
    if not present.any():
        raise ValueError('MAP needs at least one video with a label')
    _, classes, score, relevant = _top_k_entries(scores, labels, top_k)
    # Empty classes get a dummy denominator; they are dropped below.
    aps = _grouped_average_precision(classes, score, relevant,
                                     np.where(present, num_positives, 1.0))
    return float(aps[present].mean())


def label_to_multi_hot(label: Any,
                       num_classes: int,
                       label_format: str = 'auto') -> np.ndarray:
    """A video's ground truth as a multi-hot vector.

    With ``label_format='auto'`` a 1-D label of length ``num_classes``
    whose values are all 0 or 1 is multi-hot if it is float or bool
    (mmaction2's multi-label datasets store float vectors) or, for integer
    labels, if ``num_classes > 2`` (as indices it would repeat a class;
    mmaction2 1.1 turns numpy and list labels into integers). Anything else,
    including every 0-d label, is class indices. Pass ``'multi_hot'`` for
    integer multi-hot vectors of 1 or 2 classes.

    Args:
        label (array_like): Class index, shape () or (1, ); class indices,
            shape (n, ), possibly empty; or a multi-hot vector, shape (C, ).
        num_classes (int): Number of classes C.
        label_format (str): ``'auto'``, ``'index'`` or ``'multi_hot'``.

    Returns:
        np.ndarray: Bool vector, shape (C, ).
    """
    if label_format not in LABEL_FORMATS:
        raise ValueError(f'label_format must be one of {LABEL_FORMATS}, got '
                         f'{label_format!r}')
    array = np.asarray(
        label.detach().cpu() if hasattr(label, 'detach') else label)
    scalar = array.ndim == 0
    array = array.reshape(-1) if scalar else array
    if array.ndim != 1:
        raise ValueError('a label must be a class index, a list of them or '
                         f'a multi-hot vector, got shape {array.shape}')
    binary = array.size == num_classes and np.isin(array, (0, 1)).all()
    if label_format == 'auto':
        multi_hot = binary and not scalar and (
            array.dtype.kind in 'fb' or num_classes > 2)
    else:
        multi_hot = label_format == 'multi_hot'
    if multi_hot:
        if not binary:
            raise ValueError(
                f'a multi-hot label must have {num_classes} values, all 0 '
                f'or 1, got {array.tolist()}')
        return array.astype(bool)
    if array.dtype.kind not in 'iuf' or not np.isfinite(array).all() or \
            (array != np.round(array)).any():
        raise ValueError('class indices must be integers, got '
                         f'{array.tolist()}')
    if ((array < 0) | (array >= num_classes)).any():
        # -1 is how mmaction2 marks an unlabelled video.
        raise ValueError(
            f'class indices {array.tolist()} out of range [0, {num_classes})'
            '; unlabelled videos (label -1) cannot be evaluated')
    multi_hot = np.zeros(num_classes, dtype=bool)
    multi_hot[array.astype(np.int64)] = True
    return multi_hot


@METRICS.register_module()
class YouTube8MMetric(BaseMetric):
    """YouTube-8M's Hit@1, PERR, GAP@k and MAP@k, as fractions in [0, 1].

    Reports ``hit@1``, ``perr``, ``gap@<top_k>`` and ``map@<top_k>`` (e.g.
    ``yt8m/gap@20``), as fractions like mmaction2's ``AccMetric``; see the
    functions :func:`hit_at_one`, :func:`perr`, :func:`gap_at_k` and
    :func:`map_at_k` for the definitions, and the module docstring for
    ties. Each data sample needs class scores (``pred_score``, or
    ``pred_scores['item']`` in mmaction2 1.1) and a label (``gt_label`` or
    ``gt_labels['item']``) read by :func:`label_to_multi_hot`. Every
    video's full score vector is kept until evaluation.

    Args:
        metrics (str | Sequence[str]): Any of ``'hit@1'``, ``'perr'``,
            ``'gap'``, ``'map'``.
        top_k (int): Predictions kept per video for GAP and MAP.
        label_format (str): How labels are read: ``'auto'``, ``'index'``
            or ``'multi_hot'`` (see :func:`label_to_multi_hot`).
        collect_device (str): Device to gather results on.
        prefix (str, optional): Key prefix; defaults to ``'yt8m'``.
    """

    default_prefix: Optional[str] = 'yt8m'

    def __init__(self,
                 metrics: Union[str, Sequence[str]] = METRIC_NAMES,
                 top_k: int = 20,
                 label_format: str = 'auto',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = (metrics, ) if isinstance(metrics, str) else tuple(metrics)
        unknown = [name for name in metrics if name not in METRIC_NAMES]
        if unknown or not metrics:
            raise ValueError(f'YouTube8MMetric: metrics must be among '
                             f'{METRIC_NAMES}, got {metrics}')
        if isinstance(top_k, bool) or not isinstance(top_k, int) or \
                top_k < 1:
            raise ValueError('YouTube8MMetric: top_k must be a positive '
                             f'integer, got {top_k!r}')
        if label_format not in LABEL_FORMATS:
            raise ValueError(f'YouTube8MMetric: label_format must be one of '
                             f'{LABEL_FORMATS}, got {label_format!r}')
        self.metrics = tuple(dict.fromkeys(metrics))
        self.top_k = top_k
        self.label_format = label_format

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep each video's class scores and true classes.

        Args:
            data_batch (Any): Unused.
            data_samples (Sequence[dict]): Model outputs, as dicts or data
                samples with class scores and a ground-truth label.
        """
        for sample in data_samples:
            scores = _to_numpy(_read(sample, 'pred_score', 'pred_scores'))
            if scores.ndim != 1 or scores.size == 0:
                raise ValueError('YouTube8MMetric: class scores must have '
                                 f'shape (num_classes, ), got {scores.shape}')
            multi_hot = label_to_multi_hot(
                _read(sample, 'gt_label', 'gt_labels'), scores.size,
                self.label_format)
            # Indices, not the multi-hot vector: most videos have few.
            self.results.append((scores.copy(), np.flatnonzero(multi_hot)))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """The chosen metrics over all videos, as fractions."""
        if not results:
            raise ValueError('YouTube8MMetric: no results to evaluate')
        sizes = {scores.size for scores, _ in results}
        if len(sizes) != 1:
            raise ValueError('YouTube8MMetric: videos have different numbers '
                             f'of class scores: {sorted(sizes)}')
        scores = np.stack([s for s, _ in results]).astype(np.float64)
        labels = np.zeros(scores.shape, dtype=bool)
        for row, (_, classes) in enumerate(results):
            labels[row, classes] = True
        if not labels.any():
            raise ValueError('YouTube8MMetric: no video has a label, the '
                             'metrics are undefined')
        metrics = dict()
        for name in self.metrics:
            if name == 'hit@1':
                metrics[name] = hit_at_one(scores, labels)
            elif name == 'perr':
                metrics[name] = perr(scores, labels)
            elif name == 'gap':
                metrics[f'gap@{self.top_k}'] = gap_at_k(
                    scores, labels, self.top_k)
            else:
                metrics[f'map@{self.top_k}'] = map_at_k(
                    scores, labels, self.top_k)
        return metrics


def _read(sample: Any, key: str, label_data_key: str) -> Any:
    # mmengine hands metrics to_dict() copies, which compat's getters (for
    # data samples) cannot read: mmaction2 1.2 stores a tensor under
    # ``key``, 1.1 a LabelData, a dict once copied, under ``label_data_key``
    # with the tensor in 'item'. ``get`` reads dicts and data samples alike.
    value = sample.get(key)
    if value is None:
        label_data = sample.get(label_data_key)
        value = None if label_data is None else label_data.get('item')
    if value is None:
        raise KeyError(f'YouTube8MMetric: a data sample has neither {key!r} '
                       f'nor {label_data_key!r}')
    return value


def _to_numpy(value: Any) -> np.ndarray:
    return np.asarray(
        value.detach().cpu() if hasattr(value, 'detach') else value)
