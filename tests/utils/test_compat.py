import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample

from hallucinet_plugin.utils import (
    get_gt_label,
    get_pred_score,
    set_gt_label,
    set_pred_score,
)


@pytest.mark.parametrize('label,expected', [
    (3, [3]),
    (np.array(2), [2]),
    (torch.tensor(1), [1]),
    (torch.tensor([0]), [0]),
    ([1, 3], [1, 3]),
])
def test_gt_label_round_trip(label, expected):
    sample = ActionDataSample()
    assert set_gt_label(sample, label) is sample
    got = get_gt_label(sample)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.long
    assert got.tolist() == expected


def test_gt_label_overwrites():
    sample = set_gt_label(ActionDataSample(), 1)
    set_gt_label(sample, 2)
    assert get_gt_label(sample).tolist() == [2]


def test_gt_label_rejects_bad_types():
    with pytest.raises(TypeError):
        set_gt_label(ActionDataSample(), 'walking')


def test_pred_score_round_trip():
    scores = torch.tensor([0.1, 0.7, 0.2])
    sample = ActionDataSample()
    assert set_pred_score(sample, scores) is sample
    got = get_pred_score(sample)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, scores)
    # The label and the score live side by side.
    set_gt_label(sample, 1)
    assert get_gt_label(sample).tolist() == [1]
    torch.testing.assert_close(get_pred_score(sample), scores)


def test_pred_score_from_numpy_is_float():
    sample = set_pred_score(ActionDataSample(), np.array([1, 3]))
    got = get_pred_score(sample)
    assert got.dtype == torch.float32
    assert got.tolist() == [1., 3.]


def test_pred_score_survives_stacking_a_batch():
    samples = [
        set_pred_score(ActionDataSample(), torch.full((4, ), float(i)))
        for i in range(3)
    ]
    batch = torch.stack([get_pred_score(s) for s in samples])
    assert batch.shape == (3, 4)
    assert batch[:, 0].tolist() == [0., 1., 2.]
