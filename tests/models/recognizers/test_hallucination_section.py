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
