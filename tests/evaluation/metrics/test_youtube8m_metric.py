import numpy as np
import pytest
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import Evaluator

import hallucinet_plugin  # noqa: F401  (registers YouTube8MMetric)
from hallucinet_plugin.evaluation.metrics.youtube8m_metric import (
    gap_at_k,
    hit_at_one,
    label_to_multi_hot,
    map_at_k,
    perr,
    top_k_mask,
)
from hallucinet_plugin.utils.compat import set_gt_label, set_pred_score

# 3 videos x 4 classes, all scores distinct.
#   video 0: labels {0, 2}, ranking c0 .9, c1 .8, c2 .3, c3 .1
#   video 1: labels {2},    ranking c1 .7, c2 .6, c3 .4, c0 .2
#   video 2: labels {1, 3}, ranking c3 .95, c0 .5, c2 .35, c1 .05
SCORES = np.array([[0.9, 0.8, 0.3, 0.1],
                   [0.2, 0.7, 0.6, 0.4],
                   [0.5, 0.05, 0.35, 0.95]])
LABELS = np.array([[1, 0, 1, 0],
                   [0, 0, 1, 0],
                   [0, 1, 0, 1]])
INDICES = [[0, 2], [2], [1, 3]]
# Hit@1: top classes c0 (hit), c1 (miss), c3 (hit) -> 2/3.
HIT_AT_ONE = 2 / 3
# PERR: v0 top-2 {c0, c1} 1/2; v1 top-1 {c1} 0; v2 top-2 {c3, c0} 1/2
# -> (1/2 + 0 + 1/2) / 3 = 1/3.
PERR = 1 / 3
# GAP@2 (v0's c2 and v2's c1 fall out of their top-2): pooled
# .95+ .9+ .8- .7- .6+ .5-: positives at ranks 1, 2, 5; 5 labels in all
# -> (1/1 + 2/2 + 3/5) / 5 = 2.6 / 5.
GAP_AT_2 = 0.52
# MAP@2: c0 [.9+ .5-] P=1 -> 1; c1 [.8- .7-] P=1 -> 0;
# c2 [.6+] P=2 -> (1/1) / 2; c3 [.95+] P=1 -> 1; (1 + 0 + .5 + 1) / 4.
MAP_AT_2 = 0.625
# GAP@4 (everything): positives at pooled ranks 1, 2, 5, 9, 12
# -> (1 + 1 + 3/5 + 4/9 + 5/12) / 5 = (623 / 180) / 5.
GAP_AT_4 = 623 / 900
# MAP@4: c0 [.9+ .5- .2-] -> 1; c1 [.8- .7- .05+] -> 1/3;
# c2 [.6+ .35- .3+] -> (1 + 2/3) / 2 = 5/6; c3 [.95+ .4- .1-] -> 1;
# (1 + 1/3 + 5/6 + 1) / 4 = 19/24.
MAP_AT_4 = 19 / 24


def test_hand_computed_values_with_a_positive_outside_top_k():
    assert hit_at_one(SCORES, LABELS) == pytest.approx(HIT_AT_ONE)
    assert perr(SCORES, LABELS) == pytest.approx(PERR)
    assert gap_at_k(SCORES, LABELS, top_k=2) == pytest.approx(GAP_AT_2)
    assert map_at_k(SCORES, LABELS, top_k=2) == pytest.approx(MAP_AT_2)
    assert gap_at_k(SCORES, LABELS, top_k=4) == pytest.approx(GAP_AT_4)
    assert map_at_k(SCORES, LABELS, top_k=4) == pytest.approx(MAP_AT_4)
    # top_k beyond the number of classes keeps every class.
    assert gap_at_k(SCORES, LABELS, top_k=20) == pytest.approx(GAP_AT_4)
    assert map_at_k(SCORES, LABELS, top_k=20) == pytest.approx(MAP_AT_4)


def test_video_without_labels():
    # Video 3 has no label; its top-2 are c0 .85 and c3 .03.
    scores = np.vstack([SCORES, [0.85, 0.01, 0.02, 0.03]])
    labels = np.vstack([LABELS, [0, 0, 0, 0]])
    # Hit@1 counts it as a miss: 2/4. PERR leaves it out: still 1/3.
    assert hit_at_one(scores, labels) == pytest.approx(0.5)
    assert perr(scores, labels) == pytest.approx(PERR)
    # GAP@2: .85- joins the pool at rank 3, .03- at the end: positives at
    # ranks 1, 2, 6 -> (1 + 1 + 3/6) / 5.
    assert gap_at_k(scores, labels, top_k=2) == pytest.approx(0.5)
    # MAP@2: c0 [.9+ .85- .5-] -> 1, c3 [.95+ .03-] -> 1; unchanged.
    assert map_at_k(scores, labels, top_k=2) == pytest.approx(MAP_AT_2)


def test_classes_without_positives_are_left_out_of_map():
    # Class 4 has no positive video and tops video 1 at .99.
    scores = np.hstack([SCORES, [[0.0], [0.99], [0.0]]])
    labels = np.hstack([LABELS, [[0], [0], [0]]])
    # MAP@4: v1 drops c0 .2- from its top-4 (c0 stays [.9+ .5-] -> 1),
    # c1, c2, c3 keep 1/3, 5/6, 1; c4 [.99-] is left out: still 19/24
    # (with it as AP 0 it would be (19/6) / 5).
    assert map_at_k(scores, labels, top_k=4) == pytest.approx(MAP_AT_4)
    # MAP@2: v1's top-2 is c4, c1, so its c2+ falls out; no video ranks c2
    # in its top-2 and c2 counts with AP 0: c0 1, c1 0, c2 0, c3 1 -> 2/4.
    assert map_at_k(scores, labels, top_k=2) == pytest.approx(0.5)


def test_ties_are_stable_within_and_across_videos():
    # Within a video the lower class index ranks first.
    tied = np.array([[0.5, 0.5, 0.5]])
    assert hit_at_one(tied, [[1, 0, 0]]) == 1.0
    assert hit_at_one(tied, [[0, 1, 0]]) == 0.0
    assert perr(tied, [[0, 1, 1]]) == pytest.approx(0.5)  # top-2 {c0, c1}
    np.testing.assert_array_equal(
        top_k_mask([[0.9, 0.5, 0.5], [0.5, 0.5, 0.9]], 2),
        [[True, True, False], [True, False, True]])
    # Same video, same score: c0- before c1+, AP = (1/2) / 1.
    assert gap_at_k([[0.6, 0.6]], [[0, 1]], top_k=2) == pytest.approx(0.5)
    # Across videos the earlier video ranks first. Top-1 of each video is
    # c0 at .7: v0's is negative, v1's positive; 2 positives in all.
    scores = np.array([[0.7, 0.1], [0.7, 0.2]])
    labels = np.array([[0, 1], [1, 0]])
    # GAP@1: [v0 c0-, v1 c0+] -> (1/2) / 2; swapped videos: (1/1) / 2.
    assert gap_at_k(scores, labels, top_k=1) == pytest.approx(0.25)
    assert gap_at_k(scores[::-1], labels[::-1], 1) == pytest.approx(0.5)
    # MAP@1: c0 [v0-, v1+] P=1 -> 1/2, c1 no entries P=1 -> 0; mean 1/4.
    assert map_at_k(scores, labels, top_k=1) == pytest.approx(0.25)
    assert map_at_k(scores[::-1], labels[::-1], 1) == pytest.approx(0.5)


@pytest.mark.parametrize('seed', range(3))
def test_perfect_prediction_scores_one(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random((30, 10)) < 0.2
    labels[np.arange(30), rng.integers(0, 9, 30)] = True  # all labelled
    labels[:, 9] = False  # a class without positives
    # Every positive above every negative, in every video and class.
    scores = labels + 0.5 * rng.random(labels.shape)
    k = int(labels.sum(axis=1).max())
    assert hit_at_one(scores, labels) == 1.0
    assert perr(scores, labels) == pytest.approx(1.0)
    assert gap_at_k(scores, labels, k) == pytest.approx(1.0)
    assert map_at_k(scores, labels, k) == pytest.approx(1.0)
    # One fewer kept prediction drops a positive: below 1.
    assert gap_at_k(scores, labels, k - 1) < 1.0
    assert map_at_k(scores, labels, k - 1) < 1.0


def _brute_force_ap(ranked, num_positives):
    """AP of retrieved (score, relevant) pairs without ties.

    Mean precision at the retrieved positives, scaled by the fraction of
    all positives retrieved.
    """
    hits = [s for s, r in ranked if r]
    if not hits:
        return 0.0
    precisions = [
        sum(r for s, r in ranked if s >= h) / sum(1 for s, _ in ranked
                                                  if s >= h) for h in hits
    ]
    return sum(precisions) / len(hits) * len(hits) / num_positives


def _brute_force(scores, labels, k):
    kept = []  # (video, class) of each video's top-k
    for v, row in enumerate(scores):
        top = sorted(range(len(row)), key=lambda c: row[c], reverse=True)
        kept += [(v, c) for c in top[:k]]
    gap = _brute_force_ap([(scores[v, c], labels[v, c]) for v, c in kept],
                          labels.sum())
    aps = [
        _brute_force_ap([(scores[v, c], labels[v, c])
                         for v, c in kept if c == cls],
                        labels[:, cls].sum())
        for cls in range(scores.shape[1]) if labels[:, cls].any()
    ]
    return gap, sum(aps) / len(aps)


@pytest.mark.parametrize('seed', range(8))
def test_gap_and_map_match_brute_force_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 40)), int(rng.integers(2, 25))
    k = int(rng.integers(1, c + 3))  # also k >= c
    labels = (rng.random((n, c)) < 0.15).astype(int)
    scores = rng.normal(size=(n, c)) + labels  # distinct, informative
    if not labels.any():
        labels[0, 0] = 1
    gap, mean_ap = _brute_force(scores, labels, k)
    assert gap_at_k(scores, labels, k) == pytest.approx(gap, abs=1e-12)
    assert map_at_k(scores, labels, k) == pytest.approx(mean_ap, abs=1e-12)


def _official_input(seed, n, c):
    """The fixed input the reference numbers below were computed on."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.1).astype(np.float64)
    labels[np.arange(n), (rng.random(n) * (c - 1)).astype(int)] = 1.0
    labels[:, -1] = 0.0  # a class without positives
    # Distinct positive scores, so the starter code's shuffled tie order
    # and its count of only positive scores in PERR play no part.
    scores = rng.random((n, c)) + 0.6 * labels
    return scores, labels


# Reference numbers from the official starter code, github.com/google/
# youtube-8m at commit e6f6bf682d20bb21904ea9c081c15e070809d914 (files
# eval_util.py, average_precision_calculator.py,
# mean_average_precision_calculator.py), run once outside this repository
# (tensorflow's gfile stubbed, numpy 2) on _official_input:
# EvaluationMetrics(c, top_k, None), accumulate() on videos [:25] and [25:],
# get() -> avg_hit_at_one, avg_perr, gap, numpy.mean(aps).
OFFICIAL = [
    # seed, n, c, top_k, hit@1, perr, gap@k, map@k
    (2019, 60, 30, 5, 0.95, 0.6623677248677249, 0.6710299619899922,
     0.6733756578214706),
    (2019, 60, 30, 20, 0.95, 0.6623677248677249, 0.76852600706761,
     0.769920844087856),
    (7, 40, 12, 3, 0.825, 0.6916666666666668, 0.7241540103796096,
     0.7145541067666736),
]


@pytest.mark.parametrize('seed,n,c,top_k,hit,perr_,gap,mean_ap', OFFICIAL)
def test_matches_official_starter_code(seed, n, c, top_k, hit, perr_, gap,
                                       mean_ap):
    scores, labels = _official_input(seed, n, c)
    assert hit_at_one(scores, labels) == pytest.approx(hit, abs=1e-12)
    assert perr(scores, labels) == pytest.approx(perr_, abs=1e-12)
    assert gap_at_k(scores, labels, top_k) == pytest.approx(gap, abs=1e-12)
    assert map_at_k(scores, labels, top_k) == pytest.approx(mean_ap,
                                                            abs=1e-12)


def test_label_formats():
    def hot(label, num_classes=4, label_format='auto'):
        return label_to_multi_hot(label, num_classes,
                                  label_format).astype(int).tolist()

    assert hot(2) == hot(torch.tensor(2)) == [0, 0, 1, 0]
    assert hot(torch.tensor([2])) == hot(np.array([2.0])) == [0, 0, 1, 0]
    assert hot([0, 3]) == hot(torch.tensor([3, 0, 3])) == [1, 0, 0, 1]
    assert hot([]) == hot(torch.tensor([])) == [0, 0, 0, 0]
    # Length C and only 0/1: multi-hot, float or (C > 2) integer.
    assert hot(torch.tensor([1.0, 0.0, 1.0, 0.0])) == [1, 0, 1, 0]
    assert hot(np.array([1, 0, 1, 0])) == [1, 0, 1, 0]
    assert hot(torch.tensor([True, False, False, True])) == [1, 0, 0, 1]
    assert hot([1, 0, 1, 0], label_format='index') == [1, 1, 0, 0]
    # With 2 classes integer labels are indices unless told otherwise.
    assert hot([0, 1], 2) == [1, 1]
    assert hot([0, 1], 2, 'multi_hot') == [0, 1]
    assert hot(torch.tensor([0.0, 1.0]), 2) == [0, 1]
    # One class: a 0-d label is an index, a float vector multi-hot.
    assert hot(0, 1) == hot(torch.tensor([1.0]), 1) == [1]
    assert hot(torch.tensor([0.0]), 1) == [0]
    with pytest.raises(ValueError, match=r'out of range \[0, 4\)'):
        hot(4)
    with pytest.raises(ValueError, match='unlabelled'):
        hot(torch.tensor([-1]))
    with pytest.raises(ValueError, match='integers'):
        hot([1.5])
    with pytest.raises(ValueError, match='must have 4 values'):
        hot([1, 0, 1], label_format='multi_hot')
    with pytest.raises(ValueError, match='shape'):
        hot([[0, 1]])
    with pytest.raises(ValueError, match='label_format'):
        hot(0, label_format='one_hot')


def test_function_input_errors():
    with pytest.raises(ValueError, match='num_videos, num_classes'):
        gap_at_k(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match='must match'):
        map_at_k(SCORES, LABELS[:2])
    with pytest.raises(ValueError, match='0 or 1'):
        hit_at_one(SCORES, LABELS * 2)
    with pytest.raises(ValueError, match='NaN'):
        perr(np.where(LABELS, np.nan, SCORES), LABELS)
    with pytest.raises(ValueError, match='top_k'):
        gap_at_k(SCORES, LABELS, top_k=0)
    no_labels = np.zeros_like(LABELS)
    assert hit_at_one(SCORES, no_labels) == 0.0
    for fn in (perr, gap_at_k, map_at_k):
        with pytest.raises(ValueError, match='at least one video'):
            fn(SCORES, no_labels)


def _data_sample(scores, label):
    sample = ActionDataSample()
    set_pred_score(sample, torch.tensor(scores, dtype=torch.float32))
    set_gt_label(sample, label)
    return sample


def test_metric_through_mmengine_evaluator():
    evaluator = Evaluator(
        METRICS.build(dict(type='YouTube8MMetric', top_k=2)))
    # Three ways to give a label: index list, multi-hot float, indices.
    samples = [
        _data_sample(SCORES[0], INDICES[0]),
        _data_sample(SCORES[1], torch.tensor(LABELS[1], dtype=torch.float)),
        _data_sample(SCORES[2], torch.tensor(INDICES[2])),
    ]
    # Two batches, as a val loop feeds them; Evaluator passes to_dict()s.
    evaluator.process(samples[:2])
    evaluator.process(samples[2:])
    metrics = evaluator.evaluate(3)
    # float32 scores: fractions, compared at float32 precision.
    assert metrics == {
        'yt8m/hit@1': pytest.approx(HIT_AT_ONE),
        'yt8m/perr': pytest.approx(PERR),
        'yt8m/gap@2': pytest.approx(GAP_AT_2),
        'yt8m/map@2': pytest.approx(MAP_AT_2),
    }


def test_metric_chosen_metrics_prefix_and_both_spellings():
    metric = METRICS.build(
        dict(type='YouTube8MMetric', metrics='map', top_k=4, prefix='mo'))
    # mmaction2 1.1 dicts (LabelData under 'item') and 1.2 dicts (tensors).
    metric.process(None, [
        dict(pred_scores=dict(item=torch.tensor(SCORES[0])),
             gt_labels=dict(item=torch.tensor(INDICES[0]))),
        dict(pred_score=torch.tensor(SCORES[1]),
             gt_label=torch.tensor(INDICES[1])),
    ])
    metric.process(None, [_data_sample(SCORES[2], INDICES[2]).to_dict()])
    assert metric.evaluate(3) == {'mo/map@4': pytest.approx(MAP_AT_4)}
    metric = METRICS.build(
        dict(type='YouTube8MMetric', metrics=('gap', 'hit@1'), top_k=4))
    metric.process(None, [_data_sample(s, i).to_dict()
                          for s, i in zip(SCORES, INDICES)])
    assert metric.evaluate(3) == {
        'yt8m/gap@4': pytest.approx(GAP_AT_4),
        'yt8m/hit@1': pytest.approx(HIT_AT_ONE)
    }


def test_metric_errors():
    for bad in (dict(metrics=('gap', 'top5')), dict(metrics=()),
                dict(top_k=0), dict(top_k=2.5),
                dict(label_format='onehot')):
        with pytest.raises(ValueError, match='YouTube8MMetric'):
            METRICS.build(dict(type='YouTube8MMetric', **bad))
    metric = METRICS.build(dict(type='YouTube8MMetric'))
    with pytest.raises(ValueError, match=r'shape \(num_classes, \)'):
        metric.process(None, [dict(pred_score=torch.ones(2, 4),
                                   gt_label=torch.tensor([0]))])
    with pytest.raises(ValueError, match='out of range'):
        metric.process(None, [_data_sample(SCORES[0], 4).to_dict()])
    with pytest.raises(KeyError, match='pred_score'):
        metric.process(None, [dict(gt_label=torch.tensor([0]))])
    with pytest.raises(ValueError, match='no video has a label'):
        metric.compute_metrics([(SCORES[0], np.array([], dtype=int))])
    with pytest.raises(ValueError, match=r'different numbers.*\[3, 4\]'):
        metric.compute_metrics([(SCORES[0], np.array([0])),
                                (SCORES[1][:3], np.array([0]))])
    with pytest.raises(ValueError, match='no results'):
        metric.compute_metrics([])
