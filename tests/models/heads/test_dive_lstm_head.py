import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmaction.utils import register_all_modules

import hallucinet_plugin.models.heads.dive_lstm_head  # noqa: F401
from hallucinet_plugin.models.heads.dive_lstm_head import DiveLSTMHead
from hallucinet_plugin.utils.mtl_aqa import MTL_AQA_PROPERTIES

IN, HID, N, S = 8, 6, 3, 5
PROPS = dict(position=3, armstand=2)
LABELS = [dict(position=2, armstand=0), dict(position=0, armstand=1),
          dict(position=1, armstand=1)]
SCORES = [85.5, 40.0, 61.25]


def _head(**kwargs) -> DiveLSTMHead:
    torch.manual_seed(0)
    cfg = dict(
        type='DiveLSTMHead',
        in_channels=IN,
        hidden_channels=HID,
        properties=PROPS)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _samples(n=N):
    return [
        ActionDataSample(
            metainfo=dict(dive_labels=LABELS[i], score=SCORES[i]))
        for i in range(n)
    ]


def _feats(n=N, s=S):
    torch.manual_seed(1)
    return torch.randn(n * s, IN, 1, 1)


def test_defaults_are_mtl_aqa_properties():
    head = DiveLSTMHead(IN)
    assert MTL_AQA_PROPERTIES == dict(
        position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8)
    assert {n: fc.out_features
            for n, fc in head.fc_properties.items()} == MTL_AQA_PROPERTIES
    assert head.hidden_channels == 256 and head.lstm.num_layers == 1
    assert head.score_scale == 17.0 and head.with_score


def test_forward_shapes_and_accepts_flat_features():
    head = _head().eval()
    logits, score = head(_feats(), num_segs=S)
    assert logits['position'].shape == (N, 3)
    assert logits['armstand'].shape == (N, 2)
    assert score.shape == (N, )
    logits2, score2 = head(_feats().flatten(1), num_segs=S)
    torch.testing.assert_close(logits2['position'], logits['position'])
    torch.testing.assert_close(score2, score)


def test_each_video_is_its_own_sequence_in_time_order():
    head = _head().eval()
    x = _feats()
    logits, score = head(x, num_segs=S)
    # Video 1 alone gives the same outputs as inside the batch.
    one_logits, one_score = head(x[S:2 * S], num_segs=S)
    torch.testing.assert_close(one_logits['position'][0],
                               logits['position'][1])
    torch.testing.assert_close(one_score[0], score[1])
    # Reversing the frames changes the output: order matters to an LSTM.
    rev_logits, _ = head(x[S:2 * S].flip(0), num_segs=S)
    assert not torch.allclose(rev_logits['position'], one_logits['position'])


def test_losses_match_cross_entropy_and_l2():
    head = _head(
        loss_property_weight=dict(position=0.5, armstand=2.0),
        loss_score_weight=3.0,
        score_scale=10.0).eval()
    x = _feats()
    losses = head.loss(x, _samples(), num_segs=S, loss_aux={})
    assert set(losses) == {'loss_position', 'loss_armstand', 'loss_score'}
    logits, score = head(x, num_segs=S)
    for name, weight in (('position', 0.5), ('armstand', 2.0)):
        target = torch.tensor([lab[name] for lab in LABELS])
        expected = weight * F.cross_entropy(logits[name], target)
        torch.testing.assert_close(losses[f'loss_{name}'], expected)
    target = torch.tensor(SCORES) / 10.0
    expected = 3.0 * ((score - target)**2).mean()
    torch.testing.assert_close(losses['loss_score'], expected)


def test_gradient_reaches_lstm_and_every_output_layer():
    head = _head().train()
    losses = head.loss(_feats(), _samples(), num_segs=S)
    sum(losses.values()).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # Each property loss trains its own classifier only.
    head.zero_grad(set_to_none=False)
    head.loss(_feats(), _samples(), num_segs=S)['loss_armstand'].backward()
    assert head.fc_properties['position'].weight.grad.abs().sum() == 0
    assert head.fc_properties['armstand'].weight.grad.abs().sum() > 0
    assert head.lstm.weight_hh_l0.grad.abs().sum() > 0


def test_predict_writes_probabilities_labels_and_denormalised_score():
    head = _head(score_scale=17.0).eval()
    x = _feats()
    logits, score = head(x, num_segs=S)
    samples = head.predict(x, _samples(), num_segs=S)
    for i, sample in enumerate(samples):
        probs = sample.pred_dive_scores
        assert set(probs) == set(PROPS)
        assert probs['position'].shape == (3, )
        torch.testing.assert_close(probs['position'],
                                   logits['position'][i].softmax(0))
        assert int(sample.pred_dive_labels['armstand']) == int(
            logits['armstand'][i].argmax())
        torch.testing.assert_close(sample.pred_quality, score[i] * 17.0)
        # Evaluator hands metrics ``to_dict()``; the fields must survive.
        as_dict = sample.to_dict()
        assert {'pred_dive_scores', 'pred_quality',
                'dive_labels', 'score'} <= set(as_dict)


def test_views_are_trained_separately_and_averaged_at_predict():
    head = _head(seq_len=S).eval()
    x = torch.cat([_feats(N, S), _feats(N, S).flip(0)])  # two views
    # [N views-1 | N views-2] -> per video [view 1, view 2]
    x = x.reshape(2, N, S, IN).transpose(0, 1).reshape(N * 2 * S, IN)
    logits, score = head(x, num_segs=2 * S)
    assert score.shape == (2 * N, )
    samples = head.predict(x, _samples(), num_segs=2 * S)
    for i, sample in enumerate(samples):
        view_probs = logits['position'][2 * i:2 * i + 2].softmax(1)
        torch.testing.assert_close(sample.pred_dive_scores['position'],
                                   view_probs.mean(0))
        torch.testing.assert_close(sample.pred_quality,
                                   score[2 * i:2 * i + 2].mean() * 17.0)
    losses = head.loss(x, _samples(), num_segs=2 * S)
    target = torch.tensor([lab['position'] for lab in LABELS])
    expected = F.cross_entropy(logits['position'],
                               target.repeat_interleave(2))
    torch.testing.assert_close(losses['loss_position'], expected)


def test_aqa_only_and_recognition_only():
    aqa = _head(properties=None)
    assert len(aqa.fc_properties) == 0
    losses = aqa.loss(_feats(), _samples(), num_segs=S)
    assert set(losses) == {'loss_score'}
    sample = aqa.predict(_feats(), _samples(), num_segs=S)[0]
    assert 'pred_quality' in sample and 'pred_dive_scores' not in sample

    rec = _head(with_score=False)
    assert rec.fc_score is None
    # Recognition only needs no score in the data samples.
    samples = [
        ActionDataSample(metainfo=dict(dive_labels=lab)) for lab in LABELS
    ]
    losses = rec.loss(_feats(), samples, num_segs=S)
    assert set(losses) == {'loss_position', 'loss_armstand'}
    sample = rec.predict(_feats(), samples, num_segs=S)[0]
    assert 'pred_quality' not in sample and 'pred_dive_scores' in sample


def test_ground_truth_as_data_fields():
    head = _head().eval()
    samples = []
    for lab, score in zip(LABELS, SCORES):
        sample = ActionDataSample()
        sample.set_field(lab, 'dive_labels')
        sample.set_field(torch.tensor(score), 'score')
        samples.append(sample)
    from_fields = head.loss(_feats(), samples, num_segs=S)
    from_meta = head.loss(_feats(), _samples(), num_segs=S)
    for key in from_meta:
        torch.testing.assert_close(from_fields[key], from_meta[key])


def test_bad_config_and_inputs_raise():
    with pytest.raises(ValueError, match='nothing to learn'):
        _head(properties=None, with_score=False)
    with pytest.raises(ValueError, match='score'):
        _head(properties=dict(score=3))
    with pytest.raises(ValueError, match='missing'):
        _head(loss_property_weight=dict(position=1.0))
    head = _head()
    with pytest.raises(ValueError, match='num_segs=4'):
        head(_feats(), num_segs=4)
    with pytest.raises(ValueError, match='in_channels'):
        head(torch.randn(N * S, IN + 1), num_segs=S)
    with pytest.raises(KeyError, match="'dive_labels'"):
        head.loss(_feats(), [ActionDataSample()] * N, num_segs=S)
    no_score = [
        ActionDataSample(metainfo=dict(dive_labels=lab)) for lab in LABELS
    ]
    with pytest.raises(KeyError, match="'score'"):
        head.loss(_feats(), no_score, num_segs=S)
    bad = _samples()
    bad[1].set_metainfo(dict(dive_labels=dict(position=3, armstand=0)))
    with pytest.raises(ValueError, match=r'position.*outside \[0, 3\)'):
        head.loss(_feats(), bad, num_segs=S)
    lacking = _samples()
    lacking[0].set_metainfo(dict(dive_labels=dict(position=1)))
    with pytest.raises(KeyError, match="'armstand'"):
        head.loss(_feats(), lacking, num_segs=S)


def test_plugs_into_mmaction_recognizer2d():
    """The real Recognizer2D contract: it passes num_segs, loss_aux and, at
    test time, fcn_test to the head."""
    register_all_modules()  # mmaction's default scope for its own types
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='Recognizer2D',
            backbone=dict(
                type='ResNet', depth=18, pretrained=None, norm_eval=False),
            cls_head=dict(
                type='DiveLSTMHead',
                in_channels=512,
                hidden_channels=HID,
                properties=PROPS),
            data_preprocessor=dict(
                type='ActionDataPreprocessor', format_shape='NCHW')))
    inputs = torch.randn(2, 4, 3, 32, 32)
    losses = model(inputs, _samples(2), mode='loss')
    assert set(losses) == {'loss_position', 'loss_armstand', 'loss_score'}
    sum(losses.values()).backward()
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model(inputs, _samples(2), mode='predict')
    assert preds[0].pred_dive_scores['position'].shape == (3, )
    assert preds[1].pred_quality.shape == ()
