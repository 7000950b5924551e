"""The ``model.hallucination`` section on mmaction2's packaged recipes:
the 2D recipes it supports become HalluciNet; TIN without compiled ops, a
neck (TPN-TSM) and C2D are refused up front, each naming the way
forward."""
import os.path as osp

import mmaction
import pytest
from mmengine.config import Config

from hallucinet_plugin.engine.hallucination import apply_hallucination
from hallucinet_plugin.models.recognizers.hallucination_section import (
    _has_tin_shift,
    apply_section,
)
from tests.conftest import REPO

RECIPES = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs',
                   'recognition')
SECTION = dict(
    teacher=osp.join(REPO, 'configs', 'demo',
                     'teacher_r3d-tiny_adam-6e_demo-16x32.py'),
    random_teacher=True)


def recipe_model(path: str) -> dict:
    return Config.fromfile(osp.join(RECIPES, path)).model.to_dict()


def test_a_2d_recipe_becomes_hallucinet():
    model = apply_section(
        recipe_model('tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
                     'kinetics400-rgb.py'), SECTION)
    assert model['type'] == 'HalluciNet'
    assert 'hallucination' not in model
    # The recipe's 2048-d TSM features and the demo teacher's 64-d.
    assert model['cls_head']['in_channels'] == 2048 + 64


@pytest.mark.skipif(_has_tin_shift(), reason='full mmcv: TIN can run')
def test_tin_without_compiled_ops_is_refused_with_the_way_forward():
    model = recipe_model('tin/tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_'
                         'sthv1-rgb.py')
    with pytest.raises(ValueError,
                       match=r'ResNetTIN.*tin_shift.*full mmcv.*TSM recipe'):
        apply_section(model, SECTION)


def test_a_neck_is_refused_with_the_way_forward():
    model = recipe_model('tpn/tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-'
                         '150e_sthv1-rgb.py')
    with pytest.raises(ValueError, match=r'neck \(TPN.*the TSM recipe'):
        apply_section(model, SECTION)


def test_c2d_is_refused_as_the_model_and_as_the_pipeline():
    path = 'c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py'
    with pytest.raises(ValueError,
                       match=r'Recognizer3D with a C2D backbone.*TSN recipe'):
        apply_section(recipe_model(path), SECTION)
    # Through the whole config, as the tools apply it: the model first.
    cfg = Config.fromfile(osp.join(RECIPES, path))
    cfg.model.hallucination = SECTION
    with pytest.raises(ValueError, match='C2D backbone'):
        apply_hallucination(cfg)
    # And as HalluciNet(hallucination=...) sees it (no recipe type).
    model = recipe_model(path)
    model.pop('type')
    with pytest.raises(ValueError, match='C2D backbone'):
        apply_section(model, SECTION)


TSN = 'tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py'
TIMESFORMER = ('mmaction::recognition/timesformer/timesformer_divST_8xb8-'
               '8x32x1-15e_kinetics400-rgb.py')


def test_a_transformer_teacher_width_is_its_real_target():
    """MViTv2 gives pooled patch tokens and its class token, 1536-d (its
    cls_head reads 768): inferred at the configured clip on the meta
    device, without building or running the 32x224x224 teacher."""
    section = dict(
        SECTION,
        teacher='mmaction::recognition/mvit/mvit-base-p244_32x3x1_'
        'kinetics400-rgb.py',
        clip_len=32,
        teacher_scale=(224, 224))
    model = apply_section(recipe_model(TSN), section)
    assert model['hallu_head']['out_channels'] == 1536
    assert model['cls_head']['in_channels'] == 2048 + 1536
    assert model['teacher']['clip_shape'] == (32, 224, 224)


def test_a_clip_the_teacher_cannot_take_names_the_keys():
    """TimeSformer fixes 8 frames at 224 px: the section's defaults (16 at
    112) are refused naming the keys and what the teacher config tests
    on."""
    with pytest.raises(ValueError) as err:
        apply_section(recipe_model(TSN), dict(SECTION, teacher=TIMESFORMER))
    message = str(err.value)
    for words in ('model.hallucination.clip_len=16',
                  'teacher_scale=(112, 112)',
                  'clip_len=8, frame_interval=32, size=(224, 224)',
                  'teacher_cfg_options'):
        assert words in message


def test_teacher_cfg_options_shrink_a_zoo_teacher():
    section = dict(
        SECTION,
        teacher=TIMESFORMER,
        clip_len=4,
        teacher_scale=(32, 32),
        teacher_cfg_options={
            'model.backbone.num_frames': 4,
            'model.backbone.img_size': 32,
            'model.backbone.embed_dims': 64,
            'model.backbone.num_heads': 2,
        })
    model = apply_section(recipe_model(TSN), section)
    assert model['teacher']['model']['backbone']['img_size'] == 32
    assert model['hallu_head']['out_channels'] == 64


@pytest.mark.parametrize('options, error, words', [
    ({'model.backbon.img_size': 32}, KeyError,
     r"teacher_cfg_options\['model.backbon.img_size'\]: the teacher config "
     r"has no 'model.backbon'"),
    ({'model.backbone.img_sise': 32}, ValueError,
     r'cannot be built with model.hallucination.teacher_cfg_options: '
     r'TypeError: .*img_sise'),
    ('model.backbone.img_size=32', TypeError, 'dict of dotted keys'),
])
def test_teacher_cfg_options_errors_name_the_key(options, error, words):
    section = dict(SECTION, teacher=TIMESFORMER,
                   teacher_cfg_options=options)
    with pytest.raises(error, match=words):
        apply_section(recipe_model(TSN), section)


def test_a_wrong_timm_student_width_says_which_width(tmp_path):
    """mmaction2's own timm path reads the last feature map (288 for
    MobileNetV3-small-050); the plugin's student gives timm's pre-logits
    width (1024)."""
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    model = recipe_model(TSN)
    model['backbone'] = dict(type='timm.mobilenetv3_small_050',
                             pretrained=False)
    model['cls_head']['in_channels'] = 288
    with pytest.raises(ValueError, match=r'in_channels=288 but the student '
                       r"gives 1024 .*pre-logits width.*model.cls_head."
                       r'in_channels'):
        MODELS.build(dict(model, type='HalluciNet', hallucination=SECTION))


def test_teacher_layer_width_is_inferred_and_a_wrong_name_is_named():
    model = apply_section(recipe_model(TSN),
                          dict(SECTION, teacher_layer='backbone.layer1',
                               teacher_scale=(32, 32)))
    assert model['hallu_head']['out_channels'] < 64  # an early stage
    with pytest.raises(ValueError, match=r"model.hallucination.teacher_layer="
                       r"'backbone.nope' is not a submodule"):
        apply_section(recipe_model(TSN),
                      dict(SECTION, teacher_layer='backbone.nope'))
