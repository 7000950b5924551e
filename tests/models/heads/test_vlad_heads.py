"""NetVLADHead and NeXtVLADHead: against loop references, in every input
layout, in training and in mmaction2's Recognizer2D."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmaction.utils import register_all_modules

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.models.heads import NetVLADHead, NeXtVLADHead
from hallucinet_plugin.utils.compat import get_pred_score, set_gt_label

N, T, D, NUM_CLASSES = 2, 3, 8, 5
SMALL = dict(
    NetVLADHead=dict(num_clusters=4, hidden_channels=6),
    NeXtVLADHead=dict(
        num_clusters=3,
        expansion=2,
        groups=4,
        hidden_channels=8,
        gating_reduction=2))
HEADS = sorted(SMALL)


def _head(head_type: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    cfg = dict(type=head_type, num_classes=NUM_CLASSES, in_channels=D)
    cfg.update(SMALL[head_type], **kwargs)
    return MODELS.build(cfg)


def _randomise_batchnorm(module: nn.Module) -> None:
    """Eval-mode BatchNorm that is no identity, so that a reference which
    skips one, or reads the wrong channel, disagrees."""
    torch.manual_seed(1)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm1d):
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.normal_(bn.bias, 0, 0.5)


def _sequence(n: int = N, t: int = T) -> torch.Tensor:
    torch.manual_seed(2)
    return torch.randn(n, t, D, dtype=torch.float64)


# ----------------------------------------------------------- references
# One video at a time, one frame, cluster and group at a time; they read
# the module's weights only.
def _bn(x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """Eval-mode BatchNorm of one vector."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean) * scale + bn.bias


def _head_ref(v: torch.Tensor, head: nn.Module) -> torch.Tensor:
    """Hidden layer, context gating and classifier of one descriptor."""
    h = _bn(head.fc_hidden.weight @ v, head.bn_hidden)
    if not isinstance(head.gating, nn.Identity):
        layers = head.gating.gate
        if len(layers) == 2:  # Miech et al.: sigmoid(BN(h W))
            gate = _bn(layers[0].weight @ h, layers[1])
        else:  # NeXtVLAD's squeeze-and-excitation bottleneck
            squeezed = torch.relu(_bn(layers[0].weight @ h, layers[1]))
            gate = layers[3].weight @ squeezed + layers[3].bias
        h = h * torch.sigmoid(gate)
    return head.fc_cls.weight @ h + head.fc_cls.bias


def _netvlad_ref(head: NetVLADHead, x: torch.Tensor) -> torch.Tensor:
    centers = head.centers
    num_clusters = centers.shape[0]
    scores = []
    for video in x:
        assign = [
            torch.softmax(_bn(head.assign.weight @ x_t, head.bn_assign), 0)
            for x_t in video
        ]
        vlad = [torch.zeros(D, dtype=x.dtype) for _ in range(num_clusters)]
        for k in range(num_clusters):
            for t, x_t in enumerate(video):
                vlad[k] = vlad[k] + assign[t][k] * (x_t - centers[k])
        # Intra-normalisation, then the whole descriptor.
        vlad = [v_k / v_k.norm() for v_k in vlad]
        v = torch.cat(vlad)
        scores.append(_head_ref(v / v.norm(), head))
    return torch.stack(scores)


def _nextvlad_ref(head: NeXtVLADHead, x: torch.Tensor) -> torch.Tensor:
    centers = head.centers
    num_clusters, group_channels = centers.shape
    groups = head.groups
    scores = []
    for video in x:
        vlad = [
            torch.zeros(group_channels, dtype=x.dtype)
            for _ in range(num_clusters)
        ]
        for x_t in video:
            x_dot = head.expand.weight @ x_t + head.expand.bias
            attention = torch.sigmoid(head.group_attention.weight @ x_dot +
                                      head.group_attention.bias)
            # Rows of the assignment layer: group-major, (g, k).
            logits = _bn(head.assign.weight @ x_dot, head.bn_assign)
            for g in range(groups):
                assign = torch.softmax(
                    logits[g * num_clusters:(g + 1) * num_clusters], 0)
                x_tg = x_dot[g * group_channels:(g + 1) * group_channels]
                for k in range(num_clusters):
                    vlad[k] = vlad[k] + attention[g] * assign[k] * (
                        x_tg - centers[k])
        v = torch.cat(vlad)
        v = _bn(v / v.norm(), head.bn_descriptor)
        scores.append(_head_ref(v, head))
    return torch.stack(scores)


REFERENCES = dict(NetVLADHead=_netvlad_ref, NeXtVLADHead=_nextvlad_ref)


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize('head_type,kwargs', [
    ('NetVLADHead', dict()),
    ('NetVLADHead', dict(gating=False)),
    ('NeXtVLADHead', dict()),
    ('NeXtVLADHead', dict(gating=False)),
])
def test_matches_loop_reference(head_type, kwargs):
    head = _head(head_type, **kwargs).double().eval()
    _randomise_batchnorm(head)
    x = _sequence()
    with torch.no_grad():
        scores = head(x)
        expected = REFERENCES[head_type](head, x)
    assert scores.shape == (N, NUM_CLASSES)
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize('head_type', HEADS)
def test_input_layouts_give_the_same_scores(head_type):
    head = _head(head_type).double().eval()
    _randomise_batchnorm(head)
    torch.manual_seed(3)
    maps = torch.randn(N * T, D, 2, 3, dtype=torch.float64)
    # [N * T, D, H, W] -> [N * T, D] -> [N, T, D]
    vectors = maps.mean(dim=(2, 3))
    sequence = vectors.reshape(N, T, D)
    with torch.no_grad():
        from_maps = head(maps, num_segs=T)
        torch.testing.assert_close(head(vectors, num_segs=T), from_maps)
        torch.testing.assert_close(head(sequence), from_maps)
        torch.testing.assert_close(head(sequence, num_segs=T), from_maps)
        # A video is a set of frames: their order does not matter, the
        # other video of the batch does not either.
        shuffled = sequence[:, torch.tensor([2, 0, 1])]
        torch.testing.assert_close(head(shuffled), from_maps)
        torch.testing.assert_close(head(sequence[1:]), from_maps[1:])
        hidden = head.forward_head(
            head.forward_features(sequence), pre_logits=True)
    assert hidden.shape == (N, head.hidden_channels)
    assert not torch.allclose(from_maps[0], from_maps[1])


@pytest.mark.parametrize('head_type', HEADS)
def test_every_parameter_gets_a_gradient(head_type):
    # Four videos: with two, the BatchNorms over videos pass no gradient.
    head = _head(head_type, dropout_ratio=0.5).train()
    torch.manual_seed(4)
    x = torch.randn(4 * T, D)
    scores = head(x, num_segs=T)
    F.cross_entropy(scores, torch.tensor([0, 1, 2, 3])).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_build_from_registry_with_defaults():
    netvlad = MODELS.build(
        dict(type='NetVLADHead', num_classes=NUM_CLASSES, in_channels=D))
    assert isinstance(netvlad, NetVLADHead)
    assert netvlad.num_clusters == 64
    assert netvlad.fc_hidden.in_features == 64 * D
    assert netvlad.hidden_channels == 1024 and netvlad.dropout_ratio == 0.5
    # Miech et al.'s full gate.
    assert netvlad.gating.gate[0].out_features == 1024
    nextvlad = MODELS.build(
        dict(type='NeXtVLADHead', num_classes=NUM_CLASSES, in_channels=D))
    assert isinstance(nextvlad, NeXtVLADHead)
    assert (nextvlad.num_clusters, nextvlad.expansion,
            nextvlad.groups) == (128, 2, 8)
    assert nextvlad.group_channels == 2 * D // 8
    assert nextvlad.fc_hidden.in_features == 128 * 2 * D // 8
    assert nextvlad.hidden_channels == 2048
    assert nextvlad.gating.gate[0].out_features == 2048 // 8
    assert nextvlad.fc_cls.out_features == NUM_CLASSES
    no_gate = MODELS.build(
        dict(
            type='NetVLADHead',
            num_classes=NUM_CLASSES,
            in_channels=D,
            gating=False))
    assert isinstance(no_gate.gating, nn.Identity)


@pytest.mark.parametrize('head_type', HEADS)
def test_multi_class_bce_loss(head_type):
    head = _head(
        head_type,
        multi_class=True,
        loss_cls=dict(type='BCELossWithLogits')).eval()
    _randomise_batchnorm(head)
    labels = torch.tensor([[1., 0., 1., 0., 0.], [0., 1., 1., 1., 0.]])
    samples = [set_gt_label(ActionDataSample(), label) for label in labels]
    x = _sequence().float().flatten(0, 1)
    losses = head.loss(x, samples, num_segs=T)
    # Multi-hot labels: no top-k accuracy, only the loss.
    assert set(losses) == {'loss_cls'}
    expected = F.binary_cross_entropy_with_logits(head(x, num_segs=T), labels)
    torch.testing.assert_close(losses['loss_cls'], expected)


@pytest.mark.parametrize('recognizer', ['Recognizer2D', 'HalluciNet'])
@pytest.mark.parametrize('head_type', HEADS)
def test_pixel_level_loss_and_predict(head_type, recognizer):
    """Pixels in: mmaction2's Recognizer2D and HalluciNet (here without a
    teacher) hand the head ResNet-18 maps (N * num_segs, 512, 1, 1) with
    num_segs, loss_aux and, at test time, fcn_test."""
    register_all_modules()  # mmaction's default scope for its own types
    torch.manual_seed(0)
    cls_head = dict(
        type=head_type,
        num_classes=NUM_CLASSES,
        in_channels=512,
        average_clips='prob')
    cls_head.update(SMALL[head_type])
    model = MODELS.build(
        dict(
            type=recognizer,
            backbone=dict(
                type='ResNet', depth=18, pretrained=None, norm_eval=False),
            cls_head=cls_head,
            data_preprocessor=dict(
                type='ActionDataPreprocessor', format_shape='NCHW')))
    model.init_weights()
    inputs = torch.randn(2, 3, 3, 32, 32)
    samples = [set_gt_label(ActionDataSample(), label) for label in (1, 4)]
    losses = model(inputs, samples, mode='loss')
    assert {'loss_cls', 'top1_acc'} <= set(losses)
    assert losses['loss_cls'].dim() == 0
    assert torch.isfinite(losses['loss_cls'])
    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    assert len(preds) == 2
    for pred in preds:
        score = get_pred_score(pred).flatten()
        assert score.shape == (NUM_CLASSES, )
        torch.testing.assert_close(score.sum(), torch.tensor(1.0))


@pytest.mark.parametrize('head_type', HEADS)
def test_bad_shapes_raise(head_type):
    head = _head(head_type)
    x = torch.randn(N * T, D)
    with pytest.raises(ValueError, match='num_segs=None'):
        head(x)
    with pytest.raises(ValueError, match='num_segs=4'):
        head(x, num_segs=4)
    with pytest.raises(ValueError, match=r'num_segs=2 .* T=3'):
        head(x.reshape(N, T, D), num_segs=2)
    bad = r'x must have shape .*got \(6, 8, 1, 1, 1\)'
    with pytest.raises(ValueError, match=bad):
        head(x.reshape(N * T, D, 1, 1, 1), num_segs=T)
    with pytest.raises(ValueError, match='in_channels is 8'):
        head(torch.randn(N * T, D + 1, 1, 1), num_segs=T)


def test_bad_nextvlad_arguments_raise():
    # 2 * 8 = 16 features do not split into 3 groups.
    with pytest.raises(ValueError, match=r'groups=3 .* 16'):
        _head('NeXtVLADHead', groups=3)
    with pytest.raises(ValueError, match='expansion'):
        _head('NeXtVLADHead', expansion=0)
    with pytest.raises(ValueError, match='num_clusters'):
        _head('NeXtVLADHead', num_clusters=0)
    with pytest.raises(ValueError, match='gating_reduction'):
        _head('NeXtVLADHead', gating_reduction=9)
    with pytest.raises(ValueError, match='num_clusters'):
        _head('NetVLADHead', num_clusters=0)
