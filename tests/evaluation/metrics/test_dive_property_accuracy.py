import pytest
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import Evaluator

import hallucinet_plugin.evaluation.metrics.dive_property_accuracy  # noqa

# (predicted class scores, true labels) of four dives.
CASES = [
    (dict(position=[0.1, 0.7, 0.2], armstand=[0.9, 0.1]),
     dict(position=1, armstand=0)),  # both right
    (dict(position=[0.6, 0.3, 0.1], armstand=[0.2, 0.8]),
     dict(position=2, armstand=1)),  # position wrong
    (dict(position=[0.0, 0.1, 0.9], armstand=[0.3, 0.7]),
     dict(position=2, armstand=0)),  # armstand wrong
    (dict(position=[0.2, 0.2, 0.6], armstand=[0.6, 0.4]),
     dict(position=2, armstand=0)),  # both right
]


def _samples():
    samples = []
    for scores, labels in CASES:
        sample = ActionDataSample(metainfo=dict(dive_labels=labels))
        sample.set_field({k: torch.tensor(v)
                          for k, v in scores.items()}, 'pred_dive_scores')
        samples.append(sample)
    return samples


def test_per_property_accuracy_in_percent_through_evaluator():
    evaluator = Evaluator(METRICS.build(dict(type='DivePropertyAccuracy')))
    samples = _samples()
    evaluator.process(samples[:3])
    evaluator.process(samples[3:])
    metrics = evaluator.evaluate(len(samples))
    assert metrics == {
        'acc/position': pytest.approx(75.0),
        'acc/armstand': pytest.approx(75.0)
    }


def test_selected_properties_and_prefix():
    metric = METRICS.build(
        dict(type='DivePropertyAccuracy', properties=['armstand'],
             prefix='dive'))
    metric.process(None, [s.to_dict() for s in _samples()[1:3]])
    assert metric.evaluate(2) == {'dive/armstand': pytest.approx(50.0)}


def test_reads_plain_lists_from_dicts():
    metric = METRICS.build(dict(type='DivePropertyAccuracy'))
    metric.process(None, [
        dict(pred_dive_scores=dict(ss_no=[0, 0, 5]), dive_labels=dict(
            ss_no=2)),
        dict(pred_dive_scores=dict(ss_no=[3, 0, 1]), dive_labels=dict(
            ss_no=2)),
    ])
    assert metric.evaluate(2) == {'acc/ss_no': pytest.approx(50.0)}


def test_missing_fields_raise():
    metric = METRICS.build(dict(type='DivePropertyAccuracy'))
    with pytest.raises(KeyError, match="'dive_labels'"):
        metric.process(None, [dict(pred_dive_scores=dict(position=[1, 0]))])
    metric = METRICS.build(
        dict(type='DivePropertyAccuracy', properties=['tw_no']))
    with pytest.raises(KeyError, match="'tw_no'"):
        metric.process(None, [s.to_dict() for s in _samples()])
    with pytest.raises(ValueError, match='no results'):
        METRICS.build(dict(type='DivePropertyAccuracy')).compute_metrics([])
