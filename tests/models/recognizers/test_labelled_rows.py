"""``models/recognizers/labelled_rows.py``: in a partly labelled batch the
classification loss sees the labelled samples' rows only, and the
hallucination loss of the unlabelled ones is logged apart."""
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.models.recognizers.labelled_rows import (
    labelled_head_loss,
    labelled_samples,
    unlabelled_hallu_loss,
)
from hallucinet_plugin.utils import set_gt_label

init_default_scope('mmaction')

SEGS = 2


def samples(labelled):
    out = []
    for i, flag in enumerate(labelled):
        sample = set_gt_label(ActionDataSample(), i % 3)
        if not flag:
            sample.set_metainfo(dict(labelled=False))
        out.append(sample)
    return out


def head():
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='TSNHead', num_classes=3, in_channels=4,
             dropout_ratio=0.))


def test_labelled_samples_reads_the_metainfo():
    flags = [True, False, True]
    assert labelled_samples(samples(flags)) == flags
    assert labelled_samples([ActionDataSample()]) == [True]


def test_head_loss_on_the_labelled_rows_only():
    x = torch.randn(3 * SEGS, 4, 1, 1, requires_grad=True)
    batch = samples([True, False, True])
    cls_head = head()
    loss = labelled_head_loss(cls_head, x, batch,
                              labelled_samples(batch), num_segs=SEGS)
    # The same as a batch of the two labelled samples alone.
    rows = torch.cat([x[:SEGS], x[2 * SEGS:]])
    alone = cls_head.loss(rows, [batch[0], batch[2]], num_segs=SEGS)
    torch.testing.assert_close(loss['loss_cls'], alone['loss_cls'])
    loss['loss_cls'].backward()
    assert torch.count_nonzero(x.grad[SEGS:2 * SEGS]) == 0
    assert torch.count_nonzero(x.grad[:SEGS]) > 0
    every = samples([True, True])
    torch.testing.assert_close(
        labelled_head_loss(cls_head, x[:2 * SEGS], every, [True, True],
                           num_segs=SEGS)['loss_cls'],
        cls_head.loss(x[:2 * SEGS], every, num_segs=SEGS)['loss_cls'])


def test_no_labelled_sample_gives_a_zero_loss_reaching_the_head():
    batch = samples([False, False])
    cls_head = head()
    loss = labelled_head_loss(cls_head, torch.randn(2 * SEGS, 4, 1, 1),
                              batch, [False, False], num_segs=SEGS)
    assert loss['loss_cls'].item() == 0
    loss['loss_cls'].backward()
    for name, param in cls_head.named_parameters():
        assert param.grad is not None, name


def test_unlabelled_hallucination_loss_is_logged_apart():
    hallu_head = MODELS.build(
        dict(type='HallucinationHead', in_channels=4, out_channels=4))
    hallu = torch.randn(3 * SEGS, 4, requires_grad=True)
    target = torch.randn(3 * SEGS, 4)
    assert unlabelled_hallu_loss(hallu_head, hallu, target, SEGS,
                                 samples([True] * 3)) == {}
    out = unlabelled_hallu_loss(hallu_head, hallu, target, SEGS,
                                samples([True, False, True]))
    assert list(out) == ['hallu_unlabelled']
    assert not out['hallu_unlabelled'].requires_grad
    rows = slice(SEGS, 2 * SEGS)
    torch.testing.assert_close(
        out['hallu_unlabelled'],
        hallu_head.loss(hallu[rows], target[rows], SEGS)['loss_hallu'])
