import copy

import pytest
import torch
from mmaction.models import ActionDataPreprocessor
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

import hallucinet_plugin.models.data_preprocessors.hallucinet_data_preprocessor  # noqa: F401, E501
from hallucinet_plugin.utils import get_gt_label, set_gt_label

STUDENT_MEAN, STUDENT_STD = [10., 20., 30.], [2., 4., 5.]
TEACHER_MEAN, TEACHER_STD = [114.7748, 107.7354, 99.4750], [1., 1., 1.]
NUM_CLASSES = 4


def _build(**kwargs):
    cfg = dict(
        type='HalluciNetDataPreprocessor',
        mean=STUDENT_MEAN,
        std=STUDENT_STD,
        teacher=dict(mean=TEACHER_MEAN, std=TEACHER_STD))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _samples(n):
    return [
        set_gt_label(ActionDataSample(), i % NUM_CLASSES) for i in range(n)
    ]


def _uint8(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _two_view_batch(n=2, num_student=4, num_segments=2, clip_len=3):
    """Packed two-view inputs: student ``(S * F, C, H, W)`` frames and
    teacher ``(S, C, T, h, w)`` clips per sample."""
    return dict(
        inputs=dict(
            imgs=[_uint8(num_student, 3, 6, 6, seed=i) for i in range(n)],
            teacher_imgs=[
                _uint8(num_segments, 3, clip_len, 4, 4, seed=10 + i)
                for i in range(n)
            ]),
        data_samples=_samples(n))


def _normalise(x, mean, std, dim):
    shape = [1] * x.ndim
    shape[dim] = -1
    mean = torch.tensor(mean).view(shape)
    std = torch.tensor(std).view(shape)
    return (x.float() - mean) / std


def test_per_view_normalisation():
    preprocessor = _build()
    data = _two_view_batch()
    raw = copy.deepcopy(data['inputs'])
    out = preprocessor(data, training=False)
    inputs = out['inputs']
    assert set(inputs) == {'imgs', 'teacher_imgs'}
    # [N, S * F, C, H, W] and [N, S, C, T, h, w]
    assert inputs['imgs'].shape == (2, 4, 3, 6, 6)
    assert inputs['teacher_imgs'].shape == (2, 2, 3, 3, 4, 4)
    assert inputs['imgs'].dtype == torch.float32
    assert inputs['teacher_imgs'].dtype == torch.float32
    torch.testing.assert_close(
        inputs['imgs'],
        _normalise(torch.stack(raw['imgs']), STUDENT_MEAN, STUDENT_STD, 2))
    torch.testing.assert_close(
        inputs['teacher_imgs'],
        _normalise(
            torch.stack(raw['teacher_imgs']), TEACHER_MEAN, TEACHER_STD, 2))
    # One hand-checked number per view: channel 1 of the first pixel.
    pixel = raw['imgs'][0][0, 1, 0, 0].item()
    assert inputs['imgs'][0, 0, 1, 0, 0].item() == pytest.approx(
        (pixel - 20.) / 4.)
    pixel = raw['teacher_imgs'][1][1, 2, 2, 3, 3].item()
    assert inputs['teacher_imgs'][1, 1, 2, 2, 3, 3].item() == pytest.approx(
        pixel - 99.4750, abs=1e-4)
    assert len(out['data_samples']) == 2


def test_teacher_to_rgb_is_per_view():
    # BGR -> RGB only for the teacher; the student keeps channel order.
    preprocessor = _build(teacher=dict(mean=[0., 0., 0.], std=[1., 1., 1.],
                                       to_rgb=True))
    data = _two_view_batch(n=1)
    raw = copy.deepcopy(data['inputs'])
    inputs = preprocessor(data)['inputs']
    torch.testing.assert_close(inputs['teacher_imgs'][0],
                               raw['teacher_imgs'][0][:, [2, 1, 0]].float())
    torch.testing.assert_close(
        inputs['imgs'][0],
        _normalise(raw['imgs'][0], STUDENT_MEAN, STUDENT_STD, 1))


def test_teacher_format_shape_can_be_given():
    preprocessor = _build(teacher=dict(
        mean=TEACHER_MEAN, std=TEACHER_STD, format_shape='NCTHW'))
    assert preprocessor.teacher.format_shape == 'NCTHW'
    assert _build().teacher.format_shape == 'NCTHW'


def test_teacher_without_normalisation_only_casts():
    preprocessor = _build(teacher=None)
    data = _two_view_batch(n=1)
    raw = copy.deepcopy(data['inputs'])
    inputs = preprocessor(data)['inputs']
    torch.testing.assert_close(inputs['teacher_imgs'],
                               torch.stack(raw['teacher_imgs']).float())


@pytest.mark.parametrize('format_shape,shape', [
    ('NCHW', (4, 3, 6, 6)),
    ('NCTHW', (2, 3, 4, 6, 6)),
])
@pytest.mark.parametrize('to_rgb', [False, True])
def test_tensor_inputs_match_action_data_preprocessor(format_shape, shape,
                                                      to_rgb):
    kwargs = dict(
        mean=STUDENT_MEAN,
        std=STUDENT_STD,
        to_rgb=to_rgb,
        format_shape=format_shape)
    ours = _build(**kwargs)
    theirs = ActionDataPreprocessor(**kwargs)
    inputs = [_uint8(*shape, seed=i) for i in range(3)]
    expected = theirs(
        dict(inputs=[x.clone() for x in inputs], data_samples=_samples(3)))
    got = ours(dict(inputs=inputs, data_samples=_samples(3)))
    assert isinstance(got['inputs'], torch.Tensor)
    assert got['inputs'].shape == (3, ) + shape
    torch.testing.assert_close(got['inputs'], expected['inputs'],
                               rtol=0, atol=0)


def test_tensor_inputs_blend_like_action_data_preprocessor():
    blending = dict(type='MixupBlending', num_classes=NUM_CLASSES, alpha=0.2)
    ours = _build(blending=blending)
    theirs = ActionDataPreprocessor(
        mean=STUDENT_MEAN, std=STUDENT_STD, blending=blending)
    inputs = [_uint8(4, 3, 6, 6, seed=i) for i in range(3)]
    torch.manual_seed(0)
    expected = theirs(
        dict(inputs=[x.clone() for x in inputs], data_samples=_samples(3)),
        training=True)
    torch.manual_seed(0)
    got = ours(dict(inputs=inputs, data_samples=_samples(3)), training=True)
    torch.testing.assert_close(got['inputs'], expected['inputs'])
    for a, b in zip(got['data_samples'], expected['data_samples']):
        # Mixup turns labels into soft targets over all classes.
        assert get_gt_label(a).shape == (NUM_CLASSES, )
        torch.testing.assert_close(get_gt_label(a), get_gt_label(b))


def test_teacher_feats_are_stacked():
    preprocessor = _build()
    feats = [torch.arange(5, dtype=torch.float64) + i for i in range(3)]
    data = dict(
        inputs=dict(
            imgs=[_uint8(2, 3, 6, 6, seed=i) for i in range(3)],
            teacher_feats=[f.clone() for f in feats]),
        data_samples=_samples(3))
    inputs = preprocessor(data, training=True)['inputs']
    assert set(inputs) == {'imgs', 'teacher_feats'}
    assert inputs['teacher_feats'].dtype == torch.float32
    # Targets are not normalised: exactly the stored features.
    torch.testing.assert_close(inputs['teacher_feats'],
                               torch.stack(feats).float())
    assert inputs['imgs'].shape == (3, 2, 3, 6, 6)


def test_unknown_keys_raise_naming_them():
    preprocessor = _build()
    data = _two_view_batch(n=1)
    data['inputs']['flow_imgs'] = data['inputs']['imgs']
    data['inputs']['audio'] = data['inputs']['imgs']
    with pytest.raises(KeyError, match=r"\['audio', 'flow_imgs'\]"):
        preprocessor(data)


@pytest.mark.parametrize('key', ['teacher_imgs', 'teacher_feats'])
def test_blending_with_teacher_inputs_raises_in_training(key):
    preprocessor = _build(
        blending=dict(type='CutmixBlending', num_classes=NUM_CLASSES))
    data = _two_view_batch(n=2)
    if key == 'teacher_feats':
        data['inputs'].pop('teacher_imgs')
        data['inputs']['teacher_feats'] = [torch.zeros(5), torch.ones(5)]
    with pytest.raises(ValueError, match='blending'):
        preprocessor(copy.deepcopy(data), training=True)
    # Evaluation does not blend, so the same batch is fine.
    out = preprocessor(copy.deepcopy(data), training=False)
    assert key in out['inputs']


def test_blending_student_only_dict_is_allowed_in_training():
    preprocessor = _build(
        blending=dict(type='MixupBlending', num_classes=NUM_CLASSES))
    data = dict(
        inputs=dict(imgs=[_uint8(2, 3, 6, 6, seed=i) for i in range(2)]),
        data_samples=_samples(2))
    out = preprocessor(data, training=True)
    assert out['inputs']['imgs'].shape == (2, 2, 3, 6, 6)
    assert get_gt_label(out['data_samples'][0]).shape == (NUM_CLASSES, )
