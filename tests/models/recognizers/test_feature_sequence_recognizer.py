"""FeatureSequenceRecognizer: MoNet's two streams on feature sequences."""
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.utils import get_pred_score, set_gt_label

APP, MOTION, CLASSES, STEPS = 12, 6, 5, 4


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmaction')


def linear(**kwargs):
    return dict(
        type='TSNHead',
        num_classes=CLASSES,
        consensus=dict(type='AvgConsensus', dim=1),
        average_clips='prob',
        **kwargs)


def monet(**loss):
    return dict(
        type='MoNetHead',
        in_channels=APP,
        out_channels=MOTION,
        num_layers=2,
        loss_hallu=dict(type='MoNetLoss', **loss))


def build(**kwargs):
    kwargs.setdefault('classifier', linear())
    kwargs.setdefault('stream_channels', dict(appearance=APP,
                                              motion=MOTION))
    return MODELS.build(dict(type='FeatureSequenceRecognizer', **kwargs))


def batch(num=3, multi=False):
    torch.manual_seed(1)
    inputs = dict(
        appearance=torch.randn(num, STEPS, APP),
        motion=torch.randn(num, STEPS, MOTION))
    samples = []
    for i in range(num):
        label = torch.tensor([1., 0, 0, 1, 0]) if multi else [i % CLASSES]
        samples.append(set_gt_label(ActionDataSample(), label))
    return inputs, samples


def test_late_fusion_averages_the_streams_probabilities():
    model = build(fusion_weights=(2.0, 3.0)).eval()
    inputs, samples = batch()
    scores = model(inputs, mode='tensor')
    app = model.appearance_head(
        inputs['appearance'].reshape(-1, APP, 1, 1), num_segs=STEPS)
    motion = model.motion_head(
        inputs['motion'].reshape(-1, MOTION, 1, 1), num_segs=STEPS)
    expected = (2 * app.softmax(-1) + 3 * motion.softmax(-1)) / 5
    assert torch.allclose(scores, expected, atol=1e-6)
    out = model(inputs, samples, mode='predict')
    assert torch.allclose(get_pred_score(out[0]), expected[0])
    # Appearance alone: no motion input needed.
    alone = build(stream_channels=dict(appearance=APP)).eval()
    alone.appearance_head.load_state_dict(model.appearance_head.state_dict())
    scores = alone(dict(appearance=inputs['appearance']), mode='tensor')
    assert torch.allclose(scores, app.softmax(-1), atol=1e-6)


def test_multi_class_heads_fuse_sigmoids():
    model = build(classifier=linear(
        multi_class=True, loss_cls=dict(type='BCELossWithLogits'))).eval()
    inputs, samples = batch(multi=True)
    scores = model(inputs, mode='tensor')
    assert ((scores > 0) & (scores < 1)).all()
    assert not torch.allclose(scores.sum(-1), torch.ones(3))
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cls_appearance', 'loss_cls_motion'}


def test_hallucinated_stream_trains_only_what_is_not_frozen():
    model = build(
        motion_input='hallucinated',
        hallu_head=monet(classifier='motion_head'),
        frozen=('appearance_head', 'motion_head'))
    model.train()
    # The loss's classifier is the motion head's config, frozen too.
    assert type(model.hallu_head.loss_hallu.classifier).__name__ == 'TSNHead'
    assert not model.appearance_head.training
    assert not model.motion_head.training and model.hallu_head.training
    inputs, samples = batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_hallu', 'loss_hallu_prob'}
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if name.startswith('hallu_head.') and 'loss_hallu' not in name:
            assert param.grad is not None, name
        else:
            assert param.grad is None and not param.requires_grad, name
    # Test time needs no motion features.
    scores = model.eval()(dict(appearance=inputs['appearance']),
                          mode='tensor')
    assert scores.shape == (3, CLASSES)
    with pytest.raises(KeyError, match="real motion features"):
        model.train()(dict(appearance=inputs['appearance']), samples,
                      mode='loss')


def test_unlabelled_videos_train_no_classifier():
    """A sample marked labelled=False (label -1 in an allow_unlabelled
    list): the classifiers' losses are those of the labelled ones alone."""
    model = build(classifier=linear(dropout_ratio=0.)).train()
    inputs, samples = batch()
    samples[1] = set_gt_label(ActionDataSample(), [-1])
    samples[1].set_metainfo(dict(labelled=False))
    losses = model(inputs, samples, mode='loss')
    keep = [0, 2]
    alone = model({k: v[keep] for k, v in inputs.items()},
                  [samples[i] for i in keep], mode='loss')
    assert set(losses) == set(alone)
    for key in losses:
        torch.testing.assert_close(losses[key], alone[key])


def test_stage_two_reads_stage_one_and_fine_tunes_the_motion_head(
        tmp_path):
    stage1 = build(
        motion_input='hallucinated',
        hallu_head=monet(),
        frozen=('appearance_head', 'motion_head'))
    ckpt = str(tmp_path / 'stage1.pth')
    torch.save(dict(state_dict=stage1.state_dict()), ckpt)
    stage2 = build(
        motion_input='hallucinated',
        hallu_head=monet(),
        frozen=('appearance_head', 'hallu_head'),
        stream_ckpts=dict(appearance_head=ckpt, hallu_head=ckpt,
                          motion_head=ckpt))
    stage2.init_weights()
    for key, value in stage1.state_dict().items():
        assert torch.equal(stage2.state_dict()[key], value), key
    inputs, samples = batch()
    losses = stage2.train()(inputs, samples, mode='loss')
    # Only the motion classifier's loss; hallucination frozen, no target.
    assert set(k for k in losses if k.startswith('loss')) == {
        'loss_cls_motion'
    }
    losses['loss_cls_motion'].backward()
    trained = {n for n, p in stage2.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith('motion_head.') for n in trained)


def test_stream_ckpts_are_checked(tmp_path):
    other = build(classifier=linear(), stream_channels=dict(
        appearance=APP, motion=MOTION + 1))
    ckpt = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=other.state_dict()), ckpt)
    model = build(stream_ckpts=dict(motion_head=ckpt))
    with pytest.raises(Exception, match='shape'):
        model.init_weights()


@pytest.mark.parametrize('kwargs, match', [
    (dict(motion_input='optical'), "motion_input='optical'"),
    (dict(motion_input='hallucinated'), 'needs a hallu_head'),
    (dict(hallu_head=monet()), 'only used'),
    (dict(frozen=('neck', )), "'neck' in frozen"),
    (dict(stream_channels=dict(audio=3)), r"names \['audio'\]"),
    (dict(classifier=None, stream_channels=dict(appearance=APP)),
     'without a classifier'),
    (dict(appearance_head=linear(in_channels=APP)),
     'has both its appearance_head'),
    (dict(classifier=None, stream_channels=None), 'give appearance_head'),
    (dict(stream_channels=dict(appearance=APP), motion_input='hallucinated',
          hallu_head=monet(classifier='motion_head')), 'no motion head'),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_every_part_frozen_is_refused():
    model = build(frozen=('appearance_head', 'motion_head'))
    inputs, samples = batch()
    with pytest.raises(ValueError, match='every part is frozen'):
        model(inputs, samples, mode='loss')


@pytest.mark.parametrize('classifier', [
    dict(type='NetVLADHead', num_classes=CLASSES, num_clusters=3,
         hidden_channels=8),
    dict(type='NeXtVLADHead', num_classes=CLASSES, num_clusters=3,
         expansion=2, groups=2, hidden_channels=8),
    dict(type='TRNHead', num_classes=CLASSES, num_segments=STEPS,
         hidden_dim=8),
])
def test_table3_classifiers_on_both_streams(classifier):
    model = build(classifier=classifier)
    inputs, samples = batch(num=4)
    losses = model.train()(inputs, samples, mode='loss')
    assert torch.isfinite(losses['loss_cls_appearance'])
    assert torch.isfinite(losses['loss_cls_motion'])
    scores = model.eval()(inputs, mode='tensor')
    assert torch.allclose(scores.sum(-1), torch.ones(4), atol=1e-5)
