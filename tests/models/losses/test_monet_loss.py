import math

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule

import hallucinet_plugin.models.losses.monet_loss  # noqa: F401
from hallucinet_plugin.models.losses.monet_loss import MoNetLoss

LN3 = math.log(3.)


def _tsn(num_classes=2, in_channels=2):
    return dict(
        type='TSNHead',
        num_classes=num_classes,
        in_channels=in_channels,
        dropout_ratio=0.)


def _identity_classifier(loss):
    with torch.no_grad():
        loss.classifier.fc_cls.weight.copy_(torch.eye(2))
        loss.classifier.fc_cls.bias.zero_()


def test_mse_term_by_hand():
    loss = MoNetLoss(loss_weight=2.)
    s = torch.tensor([[1., 2.], [3., 4.]])
    t = torch.tensor([[0., 2.], [1., 4.]])
    losses = loss(s, t, num_segs=2)
    # Squared errors 1, 0, 4, 0: mean 1.25, times loss_weight 2.
    assert set(losses) == {'loss_hallu'}
    torch.testing.assert_close(losses['loss_hallu'], torch.tensor(2.5))


def test_sigmoid_mse_by_hand():
    loss = MoNetLoss(use_sigmoid_mse=True)
    s, t = torch.tensor([[LN3, 0.]]), torch.zeros(1, 2)
    # sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2: ((1/4) ** 2 + 0) / 2.
    torch.testing.assert_close(loss(s, t)['loss_hallu'], torch.tensor(0.03125))


def test_probability_term_by_hand():
    loss = MoNetLoss(alpha=10., loss_weight=2., classifier=_tsn())
    _identity_classifier(loss)
    # Two videos of two steps; TSNHead averages the steps, then classifies.
    s = torch.tensor([[2 * LN3, 0.], [0., 0.], [1., -1.], [1., -1.]])
    t = torch.tensor([[0., 0.], [0., 0.], [1., -1.], [1., -1.]])
    losses = loss(s, t, num_segs=2)
    # Video 1: logits (ln 3, 0) -> p = (3/4, 1/4); q = (1/2, 1/2);
    # L1 = 1/2. Video 2: identical, 0. Mean 1/4, times 10 * 2.
    torch.testing.assert_close(losses['loss_hallu_prob'], torch.tensor(5.))
    # MSE: (2 ln 3) ** 2 / 8 elements, times 2.
    torch.testing.assert_close(losses['loss_hallu'], torch.tensor(LN3**2))
    # Per step (num_segs=1) the first video gives (9/10, 1/10) vs
    # (1/2, 1/2) and 0: mean L1 0.8 / 4 = 0.2, a different value.
    per_step = loss(s, t, num_segs=1)['loss_hallu_prob']
    torch.testing.assert_close(per_step, torch.tensor(4.))


def test_probability_term_of_a_multi_label_classifier_uses_sigmoids():
    classifier = dict(_tsn(), multi_class=True,
                      loss_cls=dict(type='BCELossWithLogits'))
    loss = MoNetLoss(alpha=1., classifier=classifier)
    _identity_classifier(loss)
    s = torch.tensor([[LN3, 0.]])
    t = torch.zeros(1, 2)
    # Independent labels: sigmoid(ln 3) = 3/4 vs 1/2, sigmoid(0) = 1/2 vs
    # 1/2; L1 = 1/4 (a softmax would give (3/4, 1/4): L1 = 1/2).
    torch.testing.assert_close(
        loss(s, t, num_segs=1)['loss_hallu_prob'], torch.tensor(0.25))


def test_gradient_flows_through_frozen_classifier():
    loss = MoNetLoss(classifier=_tsn(3, 4))
    s = torch.randn(6, 4, requires_grad=True)
    t = torch.randn(6, 4, requires_grad=True)
    loss(s, t, num_segs=3)['loss_hallu_prob'].backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    # The classifier's output on the true features is computed without
    # a graph, and its parameters take no gradient.
    assert t.grad is None
    for param in loss.classifier.parameters():
        assert not param.requires_grad and param.grad is None


def test_classifier_stays_eval_and_bn_stats_fixed():
    loss = MoNetLoss(
        classifier=dict(
            type='OmniHead', image_classes=3, video_classes=3, in_channels=4))
    bn = loss.classifier.fc2d[2]
    assert isinstance(bn, torch.nn.BatchNorm1d)
    with torch.no_grad():
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(2.)
    loss.train()
    assert loss.training
    assert not any(m.training for m in loss.classifier.modules())
    s, t = torch.randn(6, 4) * 3 + 1, torch.randn(6, 4) * 3 + 1
    losses = loss(s, t, num_segs=3)
    assert losses['loss_hallu_prob'] > 0
    torch.testing.assert_close(bn.running_mean, torch.full((4, ), 0.5))
    torch.testing.assert_close(bn.running_var, torch.full((4, ), 2.))
    assert bn.num_batches_tracked.item() == 0


def _save_recognizer_ckpt(path, weight, bias, key_prefix='cls_head.'):
    state_dict = {
        f'{key_prefix}fc_cls.weight': weight,
        f'{key_prefix}fc_cls.bias': bias,
        'backbone.conv1.weight': torch.randn(2, 3, 1, 1),
    }
    torch.save(dict(state_dict=state_dict, meta=dict(epoch=3)), path)


def test_checkpoint_loading_and_init_weights(tmp_path):
    weight, bias = torch.randn(3, 4), torch.randn(3)
    path = str(tmp_path / 'flow_tsn.pth')
    _save_recognizer_ckpt(path, weight, bias)
    loss = MODELS.build(
        dict(type='MoNetLoss', classifier=_tsn(3, 4), classifier_ckpt=path))
    fc = loss.classifier.fc_cls
    torch.testing.assert_close(fc.weight, weight)
    torch.testing.assert_close(fc.bias, bias)
    assert loss.classifier.is_init
    assert not fc.weight.requires_grad
    loss.init_weights()
    torch.testing.assert_close(fc.weight, weight)
    # Control: TSNHead's own init_weights does redraw an unloaded head.
    fresh = MODELS.build(_tsn(3, 4))
    with torch.no_grad():
        fresh.fc_cls.weight.copy_(weight)
    fresh.init_weights()
    assert not torch.allclose(fresh.fc_cls.weight, weight)


def test_enclosing_init_cfg_does_not_overwrite_loaded_classifier(tmp_path):
    weight, bias = torch.randn(3, 4), torch.randn(3)
    path = str(tmp_path / 'flow_tsn.pth')
    _save_recognizer_ckpt(path, weight, bias, key_prefix='module.cls_head.')

    class Wrapper(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Constant', layer='Linear', val=3.))
            self.loss = MoNetLoss(classifier=_tsn(3, 4), classifier_ckpt=path)

    model = Wrapper()
    model.init_weights()
    torch.testing.assert_close(model.loss.classifier.fc_cls.weight, weight)
    torch.testing.assert_close(model.loss.classifier.fc_cls.bias, bias)


def test_checkpoint_of_classifier_alone(tmp_path):
    head = MODELS.build(_tsn(3, 4))
    path = str(tmp_path / 'head.pth')
    torch.save(head.state_dict(), path)
    loss = MoNetLoss(
        classifier=_tsn(3, 4), classifier_ckpt=path, classifier_prefix='')
    torch.testing.assert_close(loss.classifier.fc_cls.weight,
                               head.fc_cls.weight)


class _NotAllowed:
    pass


def test_checkpoint_errors(tmp_path):
    path = str(tmp_path / 'flow_tsn.pth')
    _save_recognizer_ckpt(path, torch.randn(3, 4), torch.randn(3))
    with pytest.raises(KeyError, match="flow_tsn.pth.*'head.'"):
        MoNetLoss(
            classifier=_tsn(3, 4),
            classifier_ckpt=path,
            classifier_prefix='head.')
    partial = str(tmp_path / 'partial.pth')
    torch.save({'cls_head.fc_cls.weight': torch.randn(3, 4)}, partial)
    with pytest.raises(KeyError, match='fc_cls.bias'):
        MoNetLoss(classifier=_tsn(3, 4), classifier_ckpt=partial)
    with pytest.raises(ValueError, match='classifier'):
        MoNetLoss(classifier_ckpt=path)
    with pytest.raises(FileNotFoundError):
        MoNetLoss(
            classifier=_tsn(3, 4),
            classifier_ckpt=str(tmp_path / 'missing.pth'))
    # Loading never unpickles arbitrary objects (weights_only).
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save(
        dict(
            state_dict={'cls_head.fc_cls.weight': torch.randn(3, 4)},
            meta=_NotAllowed()), unsafe)
    with pytest.raises(RuntimeError, match=r'(?s)unsafe.pth: torch.load\('
                       r'weights_only=True\) failed: Unsupported global: .*'
                       r'_NotAllowed.*not retried with weights_only'):
        MoNetLoss(classifier=_tsn(3, 4), classifier_ckpt=unsafe)


def test_shape_errors():
    loss = MoNetLoss(classifier=_tsn())
    with pytest.raises(ValueError, match='shape'):
        loss(torch.randn(4, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match='num_segs=3'):
        loss(torch.randn(4, 2), torch.randn(4, 2), num_segs=3)


def test_defaults():
    loss = MODELS.build(dict(type='MoNetLoss'))
    assert (loss.alpha, loss.loss_weight, loss.classifier_prefix,
            loss.use_sigmoid_mse, loss.classifier) == (10., 1., 'cls_head.',
                                                       False, None)
