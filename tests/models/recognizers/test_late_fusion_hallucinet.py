"""MoNet's two streams: LateFusionHalluciNet (a second classifier on the
hallucinated features, late fusion of the probabilities, a fixed trained
appearance stream)."""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.utils import get_pred_score
from tests.models.recognizers.recognizer_utils import (
    appearance_model,
    build,
    hallucinet_cfg,
    make_batch,
    monet_late_cfg,
)

init_default_scope('mmaction')


def test_monet_two_stream_late_fusion():
    """MoNet: sequence hallucination over segments, two classifiers."""
    torch.manual_seed(0)
    model = build(monet_late_cfg(weights=(1.0, 3.0)))
    batch = make_batch(num_segs=4)
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_cls_hallu', 'loss_hallu'} <= set(losses)
    total, _ = model.parse_losses(losses)
    total.backward()
    for name in ('hallu_head', 'hallu_cls_head', 'cls_head', 'backbone'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(name)]
        assert grads and all(g is not None for g in grads), name
    model.eval()
    imgs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        samples = model.predict(imgs, make_batch()['data_samples'])
        (app, hallu), kwargs = model.extract_feat(imgs, test_mode=True)
        p_app = model.cls_head(app, **kwargs).softmax(-1)
        p_hallu = model.hallu_cls_head(hallu, **kwargs).softmax(-1)
    expected = (p_app + 3 * p_hallu) / 4
    torch.testing.assert_close(
        torch.stack([get_pred_score(s) for s in samples]), expected)


def test_late_fusion_needs_its_heads():
    cfg = monet_late_cfg()
    cfg.pop('hallu_cls_head')
    with pytest.raises(TypeError, match='hallu_cls_head'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='needs a hallu_head'):
        MODELS.build(monet_late_cfg() | dict(hallu_head=None))
    with pytest.raises(ValueError, match='no fusion argument'):
        MODELS.build(monet_late_cfg() | dict(fusion='concat'))
    cfg = monet_late_cfg()
    cfg['hallu_cls_head']['in_channels'] = 10
    with pytest.raises(ValueError, match='in_channels=10'):
        MODELS.build(cfg)


def test_appearance_ckpt_loaded_at_init_and_frozen(tmp_path):
    """MoNet's setting: the hallucination learns on a trained appearance
    stream that training never changes (weights, BN statistics)."""
    source = appearance_model(seed=3)
    ckpt = tmp_path / 'appearance.pth'
    torch.save(dict(state_dict=source.state_dict()), ckpt)
    model = build(
        monet_late_cfg() | dict(
            appearance_ckpt=str(ckpt), freeze_appearance=True))
    own = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.startswith(('backbone.', 'cls_head.'))
    }
    assert own
    for key, value in own.items():
        assert torch.equal(value, source.state_dict()[key]), key
    hallu_before = [p.clone() for p in model.hallu_head.parameters()]
    model.train()
    assert not model.backbone.training and not model.cls_head.training
    assert model.hallu_head.training and model.hallu_cls_head.training
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    for _ in range(2):
        data = model.data_preprocessor(make_batch(num_segs=4), True)
        losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        wrapper.update_params(total)
    for key, value in model.state_dict().items():
        if key in own:
            assert torch.equal(value, own[key]), f'{key} changed'
    for (name, p), before in zip(model.hallu_head.named_parameters(),
                                 hallu_before):
        assert not torch.equal(p, before), f'hallu_head.{name} did not train'
    # Without freezing, the same start trains the appearance stream too.
    free = build(monet_late_cfg() | dict(appearance_ckpt=str(ckpt)))
    free.train()
    assert free.backbone.training
    data = free.data_preprocessor(make_batch(num_segs=4), True)
    total, _ = free.parse_losses(free(**data, mode='loss'))
    total.backward()
    assert all(p.grad is not None for p in free.backbone.parameters())


def test_appearance_ckpt_errors(tmp_path):
    missing = tmp_path / 'no.pth'
    model = MODELS.build(monet_late_cfg() | dict(appearance_ckpt=str(missing)))
    with pytest.raises(FileNotFoundError, match='appearance_ckpt not found'):
        model.init_weights()
    # A bare backbone leaves the appearance classifier random: refused.
    backbone_only = tmp_path / 'backbone.pth'
    state = appearance_model(seed=0).state_dict()
    torch.save(
        dict(state_dict={
            k: v
            for k, v in state.items() if k.startswith('backbone.')
        }), backbone_only)
    model = MODELS.build(
        monet_late_cfg() | dict(appearance_ckpt=str(backbone_only)))
    with pytest.raises(KeyError, match='lacks 2 of the 2 cls_head'):
        model.init_weights()
    # Another number of classes: a clear shape error.
    other = tmp_path / 'other.pth'
    state['cls_head.fc_cls.weight'] = torch.zeros(3, 512)
    torch.save(dict(state_dict=state), other)
    model = MODELS.build(monet_late_cfg() | dict(appearance_ckpt=str(other)))
    with pytest.raises(ValueError, match='cls_head.fc_cls.weight'):
        model.init_weights()
    with pytest.raises(TypeError, match='freeze_appearance is now '
                       "type='LateFusionHalluciNet'"):
        MODELS.build(hallucinet_cfg(freeze_appearance=True))
