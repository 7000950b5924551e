"""The configs built on mmaction2's recipes inherit them from the installed
mmaction2 (its packaged ``mmaction/.mim/configs``) instead of copying them,
and state only what they change.

They inherit through the pointers in ``configs/_base_/mmaction/``: configs
whose ``_base_`` is computed from the installed package, because
``'mmaction::'`` does not resolve on the pinned stack.
"""
import ast
import glob
import os.path as osp
import sys

import mmaction
import pytest
from mmengine.config import Config

from tests.conftest import REPO

MIM_CONFIGS = osp.realpath(
    osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs'))
POINTERS = sorted(
    osp.relpath(path, REPO) for path in glob.glob(
        osp.join(REPO, 'configs', '_base_', 'mmaction', '*.py')))
# Each config and the packaged recipe it is built on.
RECIPES = {
    'configs/tsm/hallucinet_tsm-r50_resnext101_8xb16-1x1x8-50e_'
    'kinetics400-rgb.py':
    'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
    'kinetics400-rgb.py',
    'configs/trn/hallucinet_trn-r50_resnext101_8xb16-1x1x8-50e_sthv1-rgb.py':
    'recognition/trn/trn_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
    'sthv1-rgb.py',
    'configs/monet/monet_tsn-r50_flow-tsn-r50_adam-40e_ucf101.py':
    'recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_'
    'kinetics400-rgb.py',
    'configs/monet/tsn_imagenet-pretrained-r50_sgd-80e_ucf101-flow.py':
    'recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_'
    'kinetics400-rgb.py',
}
# Every config of these folders is built on a packaged recipe, directly or
# through another config of its folder.
ON_RECIPES = sorted(
    osp.relpath(path, REPO) for folder in ('tsm', 'trn', 'monet')
    for path in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))
# The HalluciNet configs on a recipe state only HalluciNet's additions.
SHORT = [c for c in RECIPES if c.startswith(('configs/tsm', 'configs/trn'))]
MAX_LINES = 80


def bases(config: str) -> list:
    """The files a config's ``_base_`` names, resolved as mmengine does."""
    return [
        osp.realpath(Config._get_cfg_path(base, config)[0])
        for base in Config._get_base_files(config)
    ]


def ancestors(config: str) -> list:
    """Every file a config inherits from, nearest first."""
    found = []
    todo = bases(config)
    while todo:
        path = todo.pop(0)
        found.append(path)
        todo += bases(path)
    return found


def test_every_pointer_is_used():
    used = {
        osp.realpath(p)
        for config in RECIPES for p in ancestors(osp.join(REPO, config))
    }
    assert POINTERS
    for pointer in POINTERS:
        assert osp.realpath(osp.join(REPO, pointer)) in used, pointer


@pytest.mark.parametrize('pointer', POINTERS)
def test_pointer_is_the_installed_recipe_of_its_name(pointer):
    path = osp.join(REPO, pointer)
    (base, ) = bases(path)
    assert osp.isfile(base)
    assert base.startswith(MIM_CONFIGS + osp.sep), base
    assert osp.basename(base) == osp.basename(pointer)
    # Nothing but the pointer: the recipe, unchanged.
    assert Config.fromfile(path).to_dict() == Config.fromfile(
        base).to_dict()


@pytest.mark.parametrize('config', sorted(RECIPES))
def test_config_inherits_the_packaged_recipe(config):
    recipe = osp.join(MIM_CONFIGS, RECIPES[config])
    inherited = ancestors(osp.join(REPO, config))
    assert recipe in inherited, inherited


@pytest.mark.parametrize('config', ON_RECIPES)
def test_config_is_built_on_a_packaged_recipe(config):
    inherited = ancestors(osp.join(REPO, config))
    assert any(p.startswith(MIM_CONFIGS + osp.sep) for p in inherited), \
        inherited


@pytest.mark.parametrize('config', sorted(RECIPES))
def test_config_states_only_changes(config):
    """Every top-level setting the config writes is new or differs from
    the recipe's."""
    path = osp.join(REPO, config)
    with open(path) as f:
        names = {
            node.targets[0].id
            for node in ast.parse(f.read()).body
            if isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
        } - {'_base_'}
    cfg = Config.fromfile(path, import_custom_modules=False).to_dict()
    recipe = Config.fromfile(osp.join(MIM_CONFIGS, RECIPES[config])).to_dict()
    restated = sorted(n for n in names if n in recipe and cfg[n] == recipe[n])
    assert not restated, f'{config} restates the recipe\'s {restated}'


@pytest.mark.parametrize('config', SHORT)
def test_config_is_short(config):
    with open(osp.join(REPO, config)) as f:
        lines = f.read().splitlines()
    assert len(lines) < MAX_LINES, f'{config}: {len(lines)} lines'


@pytest.mark.parametrize('config', sorted(RECIPES))
def test_inheritance_needs_no_pkg_resources(config, monkeypatch):
    """setuptools >= 82 has no pkg_resources, and a fresh venv gets such a
    setuptools (torch requires setuptools >= 77): the configs must load
    without it."""
    monkeypatch.setitem(sys.modules, 'pkg_resources', None)
    cfg = Config.fromfile(
        osp.join(REPO, config), import_custom_modules=False)
    assert cfg.custom_imports.imports == ['hallucinet_plugin']
    assert cfg.train_dataloader.dataset.pipeline


def test_mmaction_scope_does_not_resolve_yet(tmp_path):
    """Why the pointers exist. mmengine resolves 'mmaction::' through
    pkg_resources (gone from setuptools >= 82) and reads every metafile of
    mmaction2's model index, one of which (BSN's, in mmaction2 1.1.0) lists
    several configs where mmengine expects one. The day this test fails,
    'mmaction::' resolves: write it in place of the pointers."""
    config = tmp_path / 'scoped.py'
    recipe = RECIPES[SHORT[0]]
    config.write_text(f"_base_ = 'mmaction::{recipe}'\n")
    with pytest.raises((ImportError, AttributeError)):
        Config.fromfile(str(config), import_custom_modules=False)


def test_tsm_keeps_the_recipes_fc_lr5():
    """The recipe's fc_lr5 boosts the classifier: the config keeps the
    recipe's True, with TSM's groups over the student alone
    (tests/engine/optimizers/ checks which parameters get what)."""
    cfg = Config.fromfile(
        osp.join(REPO, SHORT[0]), import_custom_modules=False)
    assert 'tsm' in SHORT[0]
    assert cfg.optim_wrapper.paramwise_cfg.fc_lr5 is True
    assert cfg.optim_wrapper.constructor == \
        'HalluciNetOptimWrapperConstructor'
