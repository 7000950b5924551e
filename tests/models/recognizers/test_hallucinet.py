"""HalluciNet with real timm students and real mmaction2 3D teachers."""

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.utils import get_pred_score
from tests.models.recognizers.recognizer_utils import (
    NUM_CLASSES,
    STUDENTS,
    TEACHERS,
    build,
    hallucinet_cfg,
    make_batch,
    monet_late_cfg,
)

init_default_scope('mmaction')

def teacher_state(model):
    return {k: v.clone() for k, v in model.teacher.state_dict().items()}


def check_train_step(model, batch):
    """One real optimisation step; checks losses, gradients, frozen
    teacher."""
    model.train()
    before = teacher_state(model)
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    # train_step zeroes gradients after the update; keep them for checks.
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_hallu'} <= set(losses)
    for name in ('loss_cls', 'loss_hallu'):
        assert torch.isfinite(losses[name]).all(), name
    total, _ = model.parse_losses(losses)
    total.backward()
    for name, param in model.named_parameters():
        if name.startswith('teacher.'):
            assert not param.requires_grad and param.grad is None, name
        elif param.requires_grad:
            assert param.grad is not None, f'no gradient for {name}'
    wrapper.step()
    assert not model.teacher.training
    assert all(not m.training for m in model.teacher.modules())
    after = model.teacher.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f'teacher {key} changed'


@pytest.mark.parametrize('student', list(STUDENTS))
def test_students(student):
    torch.manual_seed(0)
    model = build(hallucinet_cfg(student=student))
    check_train_step(model, make_batch())
    model.eval()
    with torch.no_grad():
        out = model.test_step(
            dict(inputs=make_batch()['inputs']['imgs'],
                 data_samples=make_batch()['data_samples']))
    assert get_pred_score(out[0]).shape == (NUM_CLASSES, )


@pytest.mark.parametrize('teacher', list(TEACHERS))
def test_teachers(teacher):
    torch.manual_seed(0)
    model = build(hallucinet_cfg(teacher=teacher))
    check_train_step(model, make_batch(teacher))


@pytest.mark.parametrize('teacher', ['resnet3d', 'timesformer'])
def test_bare_backbone_teacher(teacher):
    model = build(hallucinet_cfg(teacher=teacher, recognizer_teacher=False))
    check_train_step(model, make_batch(teacher))


def test_teacher_target_shapes_and_reduction():
    model = build(hallucinet_cfg(teacher='slowfast'))
    clips = torch.randn(2, 3, 3, 8, 32, 32)
    target = model.teacher(clips)
    # SlowFast: pooled slow (64) and fast (16) pathways, one row per clip.
    assert target.shape == (6, 80)
    slow, fast = model.teacher.model.backbone(clips.flatten(0, 1))
    expected = torch.cat([slow.mean((2, 3, 4)), fast.mean((2, 3, 4))], 1)
    torch.testing.assert_close(target, expected)


def test_teacher_layer_hook():
    cfg = hallucinet_cfg(teacher_args=dict(layer='backbone.layer3'))
    cfg['hallu_head']['out_channels'] = 32
    cfg['cls_head']['in_channels'] = 512 + 32
    model = build(cfg)
    clips = torch.randn(1, 2, 3, 8, 32, 32)
    assert model.teacher(clips).shape == (2, 32)
    check_train_step(model, make_batch())
    model.teacher.layer = 'backbone.nope'
    with pytest.raises(KeyError, match='backbone.nope'):
        model.teacher(clips)


@pytest.mark.parametrize('fusion', ['concat', 'direct', 'none'])
def test_fusion_feeds_classifier(fusion):
    model = build(hallucinet_cfg(fusion=fusion))
    model.eval()
    imgs = torch.randn(2, 3, 3, 32, 32)
    feats, kwargs = model.extract_feat(imgs, test_mode=True)
    expected = dict(concat=512 + 64, direct=64, none=512)[fusion]
    assert feats.shape == (6, expected, 1, 1)
    assert kwargs['num_segs'] == 3
    student, _ = model.extract_student_feat(imgs)
    hallu = model.hallucinate(student, 3)
    if fusion == 'concat':
        torch.testing.assert_close(feats.flatten(1),
                                   torch.cat([student, hallu], 1))
    elif fusion == 'direct':
        torch.testing.assert_close(feats.flatten(1), hallu)
    else:
        torch.testing.assert_close(feats.flatten(1), student)


def test_two_frames_per_segment():
    model = build(hallucinet_cfg(frames=2))
    batch = make_batch(num_segs=3, frames=2)
    check_train_step(model, batch)
    imgs = torch.stack(batch['inputs']['imgs']).float()
    model.eval()
    feats, kwargs = model.extract_student_feat(imgs)
    assert feats.shape == (2 * 3, 2 * 512) and kwargs['num_segs'] == 3
    # Per-segment features are the two frames' features in order.
    single = model.backbone.forward_head(
        model.backbone.forward_features(imgs[0, :2]), pre_logits=True)
    torch.testing.assert_close(feats[0], single.flatten(), atol=1e-5,
                               rtol=1e-4)


def test_cls_head_in_channels_mismatch_is_clear():
    cfg = hallucinet_cfg()
    cfg['cls_head']['in_channels'] = 100
    with pytest.raises(ValueError, match=r'in_channels=100.*576'):
        MODELS.build(cfg)
    cfg = hallucinet_cfg()
    cfg['hallu_head']['in_channels'] = 300
    with pytest.raises(ValueError, match=r'in_channels=300.*512'):
        MODELS.build(cfg)


def test_teacher_dim_mismatch_is_clear():

    def wrong_width(**teacher_args):
        cfg = hallucinet_cfg(teacher_args=teacher_args)
        cfg['hallu_head']['out_channels'] = 32
        cfg['cls_head']['in_channels'] = 512 + 32
        return cfg

    words = (r'hallu_head.out_channels=32 but the teacher gives 64 features '
             r'per clip .*model.hallucination.teacher_dim')
    # With the teacher's clip shape: caught when the model is built, by
    # shape inference (the teacher does not run).
    with pytest.raises(ValueError, match=words):
        build(wrong_width(clip_shape=(8, 32, 32)))
    # Without: at the first batch, before any optimizer step.
    model = build(wrong_width())
    data = model.data_preprocessor(make_batch(), training=True)
    with pytest.raises(ValueError, match=words):
        model(**data, mode='loss')


def test_a_clip_shape_the_teacher_cannot_take_is_an_error_when_built():
    # A transformer fixes its clip's resolution (32 px here).
    cfg = hallucinet_cfg(teacher='timesformer',
                         teacher_args=dict(clip_shape=(8, 16, 16)))
    build(hallucinet_cfg(teacher='timesformer',
                         teacher_args=dict(clip_shape=(8, 32, 32))))
    with pytest.raises(ValueError, match=r'does not take clips of .*'
                       r'\(8, 16, 16\) \(teacher.clip_shape\)'):
        build(cfg)


def test_without_hallucination_is_recognizer2d():
    """No teacher/hallu_head: exactly mmaction2's Recognizer2D."""
    backbone = dict(
        type='ResNet', depth=18, pretrained=None, norm_eval=False)
    head = dict(type='TSNHead', num_classes=NUM_CLASSES, in_channels=512)
    torch.manual_seed(0)
    ours = build(dict(type='HalluciNet', backbone=backbone, cls_head=head))
    torch.manual_seed(0)
    theirs = build(dict(type='Recognizer2D', backbone=backbone,
                        cls_head=head))
    theirs.load_state_dict(ours.state_dict())
    imgs = torch.randn(2, 3, 3, 32, 32)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        a, _ = ours.extract_feat(imgs, stage='head', test_mode=True)
        b, _ = theirs.extract_feat(imgs, stage='head', test_mode=True)
    torch.testing.assert_close(a, b)


def test_hallucination_moves_student_towards_teacher():
    torch.manual_seed(0)
    cfg = hallucinet_cfg(fusion='none')
    cfg['hallu_head']['loss_hallu']['loss_weight'] = 1.0
    model = build(cfg)
    batch = make_batch(n=4)
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    history = []
    for _ in range(40):
        log = model.train_step(batch, wrapper)
        history.append(log['loss_hallu'].item())
    assert history[-1] < history[0] / 10, history


def test_checkpoint_leaves_teacher_out(tmp_path):
    model = build(hallucinet_cfg())
    state = model.state_dict()
    assert state and not any(k.startswith('teacher.') for k in state)
    # Loading a teacher-less checkpoint keeps the current teacher.
    teacher = teacher_state(model)
    other = build(hallucinet_cfg())
    other.teacher.load_state_dict(teacher)
    other.load_state_dict(state, strict=True)
    for key, value in other.teacher.state_dict().items():
        assert torch.equal(value, teacher[key])
    kept = build(hallucinet_cfg(teacher_args=dict(in_checkpoint=True)))
    assert any(k.startswith('teacher.') for k in kept.state_dict())


def test_teacher_ckpt_loaded_and_never_reinitialised(tmp_path):
    torch.manual_seed(1)
    source = build(hallucinet_cfg())
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=source.teacher.model.state_dict()), ckpt)
    torch.manual_seed(2)
    model = build(hallucinet_cfg(teacher_args=dict(checkpoint=str(ckpt))))
    model.init_weights()
    for key, value in source.teacher.model.state_dict().items():
        assert torch.equal(value, model.teacher.model.state_dict()[key]), key
    assert model.teacher.model.is_init


def test_teacher_ckpt_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher.checkpoint'):
        MODELS.build(hallucinet_cfg(
            teacher_args=dict(checkpoint=str(tmp_path / 'no.pth'))))
    other = build(hallucinet_cfg(teacher='timesformer'))
    ckpt = tmp_path / 'timesformer.pth'
    torch.save(dict(state_dict=other.teacher.model.state_dict()), ckpt)
    with pytest.raises(KeyError, match='missing keys'):
        MODELS.build(hallucinet_cfg(teacher_args=dict(checkpoint=str(ckpt))))
    wider = hallucinet_cfg()
    wider['teacher']['model']['backbone']['base_channels'] = 16
    wider['hallu_head']['out_channels'] = 128
    wider['cls_head']['in_channels'] = 512 + 128
    ckpt = tmp_path / 'wider.pth'
    torch.save(dict(state_dict=build(wider).teacher.model.state_dict()), ckpt)
    with pytest.raises(ValueError, match='other shapes'):
        MODELS.build(hallucinet_cfg(teacher_args=dict(checkpoint=str(ckpt))))


def test_training_without_teacher_inputs_is_clear():
    model = build(hallucinet_cfg())
    batch = make_batch()
    batch['inputs'].pop('teacher_imgs')
    data = model.data_preprocessor(batch, True)
    with pytest.raises(KeyError, match='teacher_imgs'):
        model(**data, mode='loss')


def test_classifier_is_the_last_linear_module():
    """mmaction2's TSM optimizer constructor (fc_lr5) boosts the last
    Linear module: it must be the classifier, not the frozen teacher's."""
    model = MODELS.build(hallucinet_cfg())
    linears = [
        name for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert linears[-1] == 'cls_head.fc_cls'


def test_old_spellings_name_the_new_ones():
    """0.x configs (teacher_ckpt next to a bare teacher model, fusion='late')
    fail naming what to write instead."""
    old = hallucinet_cfg()
    old['teacher'] = old['teacher']['model']
    with pytest.raises(TypeError, match="type='FrozenTeacher'.*checkpoint"):
        MODELS.build(old)
    for key, new in (('teacher_ckpt', 'checkpoint of teacher'),
                     ('keep_teacher_in_ckpt', 'in_checkpoint=True'),
                     ('hallu_cls_head', 'LateFusionHalluciNet')):
        with pytest.raises(TypeError, match=f'model.{key} is now .*{new}'):
            MODELS.build(hallucinet_cfg(**{key: None}))
    with pytest.raises(TypeError, match='unexpected keyword.*nope'):
        MODELS.build(hallucinet_cfg(nope=1))
    with pytest.raises(ValueError, match='LateFusionHalluciNet'):
        MODELS.build(hallucinet_cfg(fusion='none') | dict(fusion='late'))


# --------------------------------------------------- unlabelled samples
def mark_unlabelled(samples, which):
    for i in which:
        samples[i].set_metainfo(dict(labelled=False))


def lstm_cfg():
    """The sparse-frame path: per-frame features into DiveLSTMHead."""
    return hallucinet_cfg(
        cls_head=dict(
            type='DiveLSTMHead',
            in_channels=512 + 64,
            hidden_channels=16,
            properties=dict(position=3),
            with_score=True))


def head_losses(model, inputs, samples):
    """The losses, and the gradients the classification terms alone give
    the parameters and the student frames."""
    imgs = inputs['imgs'].detach().clone().requires_grad_()
    model.zero_grad()
    losses = model(dict(inputs, imgs=imgs), samples, mode='loss')
    cls_terms = [k for k in losses if k.startswith('loss_')
                 and not k.startswith('loss_hallu')]
    sum(losses[k] for k in cls_terms).backward()
    grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    return losses, cls_terms, grads, imgs.grad


@pytest.mark.parametrize('head', ['concat', 'late', 'lstm'])
def test_classification_loss_sees_labelled_samples_only(head):
    """A batch of labelled and unlabelled samples: the classification loss
    and its gradients are exactly those of the labelled samples alone
    (none reaches an unlabelled frame); the hallucination loss covers all
    samples, and its unlabelled part is logged on its own."""
    torch.manual_seed(0)
    cfg = dict(concat=hallucinet_cfg, late=monet_late_cfg,
               lstm=lstm_cfg)[head]()
    model = build(cfg)
    # Eval mode: BatchNorm's batch statistics and dropout would tie the
    # samples of a batch together, whatever the loss.
    model.eval()
    batch = make_batch(num_segs=2, n=4)
    if head == 'lstm':
        for i, sample in enumerate(batch['data_samples']):
            sample.set_metainfo(dict(dive_labels=dict(position=i % 3),
                                     score=float(10 * i)))
    unlabelled, labelled = [1, 2], [0, 3]
    mark_unlabelled(batch['data_samples'], unlabelled)
    inputs = model.data_preprocessor(batch, True)['inputs']
    samples = batch['data_samples']
    losses, terms, grads, frames = head_losses(model, inputs, samples)

    # The labelled samples alone, without any unlabelled one.
    alone = {k: v[labelled] for k, v in inputs.items()}
    ref, ref_terms, ref_grads, ref_frames = head_losses(
        model, alone, [samples[i] for i in labelled])
    assert terms == ref_terms and len(terms) >= 1
    if head == 'lstm':
        # Unlabelled samples carry no dive_labels: any read would fail.
        assert {'loss_position', 'loss_score'} <= set(terms)
    for key in terms:
        torch.testing.assert_close(losses[key], ref[key])
    if 'top1_acc' in ref:
        torch.testing.assert_close(losses['top1_acc'], ref['top1_acc'])
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], msg=name)
    # [N, S, C, H, W]: no gradient at all reaches unlabelled frames.
    assert torch.count_nonzero(frames[unlabelled]) == 0
    torch.testing.assert_close(frames[labelled], ref_frames)
    assert torch.count_nonzero(frames[labelled]) > 0

    # The hallucination loss: all samples, and the unlabelled ones apart.
    with torch.no_grad():
        feats, kwargs = model.extract_student_feat(inputs['imgs'])
        hallu = model.hallucinate(feats, kwargs['num_segs'])
        target = model.teacher_target(inputs)
        rows = torch.arange(len(hallu)).view(4, -1)
        part = rows[unlabelled].flatten()
        every = model.hallu_head.loss(hallu, target, 2)
        alone = model.hallu_head.loss(hallu[part], target[part], 2)
    torch.testing.assert_close(losses['loss_hallu'], every['loss_hallu'])
    torch.testing.assert_close(losses['hallu_unlabelled'],
                               alone['loss_hallu'])
    assert not losses['hallu_unlabelled'].requires_grad
    # Logged, not added to the total a second time.
    total, log_vars = model.parse_losses(losses)
    assert 'hallu_unlabelled' in log_vars
    torch.testing.assert_close(
        total, sum(v for k, v in losses.items() if k.startswith('loss')))


def test_batch_without_labelled_samples_still_trains():
    torch.manual_seed(0)
    model = build(hallucinet_cfg())
    batch = make_batch(num_segs=2, n=2)
    mark_unlabelled(batch['data_samples'], [0, 1])
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert losses['loss_cls'].item() == 0
    assert losses['loss_hallu'].item() > 0
    torch.testing.assert_close(losses['hallu_unlabelled'],
                               losses['loss_hallu'].detach())
    total, _ = model.parse_losses(losses)
    total.backward()
    # Every trainable parameter gets a gradient (DDP needs one for each);
    # the classifier's is zero, the hallucination's is not.
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
    assert all(torch.count_nonzero(p.grad) == 0
               for p in model.cls_head.parameters())
    assert any(torch.count_nonzero(p.grad) > 0
               for p in model.hallu_head.parameters())
    assert any(torch.count_nonzero(p.grad) > 0
               for p in model.backbone.parameters())


def _warnings_while(build_fn):
    import logging

    from mmengine.logging import MMLogger

    messages = []

    class Records(logging.Handler):

        def emit(self, record):
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    try:
        build_fn()
    finally:
        logger.removeHandler(handler)
    return messages


def test_unnormalised_teacher_view_and_missing_checkpoint_warn():
    """A hand-written config whose data_preprocessor has no teacher
    normalisation feeds the teacher raw pixels: a warning quotes the
    teacher config's own values. No teacher_ckpt: a warning too."""
    cfg = hallucinet_cfg()
    cfg['teacher']['model']['data_preprocessor'] = dict(
        type='ActionDataPreprocessor', mean=[1., 2., 3.], std=[4., 5., 6.])
    cfg['data_preprocessor'].pop('teacher')
    messages = _warnings_while(lambda: build(cfg))
    raw = [m for m in messages if 'teacher view is not normalised' in m]
    assert len(raw) == 1 and 'mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0]' \
        in raw[0]
    assert any('no teacher checkpoint' in m for m in messages)
    messages = _warnings_while(lambda: build(hallucinet_cfg()))
    assert not [m for m in messages if 'not normalised' in m]
