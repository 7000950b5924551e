"""``utils/config.py``: configs from files, Configs and dicts; the datasets
that hold pipelines inside dataset wrappers."""
import pytest
from mmengine.config import Config

from hallucinet_plugin.utils.config import (
    config_name,
    innermost_dataset,
    load_config,
    pipeline_datasets,
    to_builtin,
)


def test_load_config_copies_and_overrides(tmp_path):
    plain = dict(model=dict(type='HalluciNet', fusion='concat'))
    cfg = load_config(plain, dict(model=dict(fusion='direct')))
    assert cfg.model.fusion == 'direct'
    assert plain['model']['fusion'] == 'concat'
    again = load_config(cfg)
    again.model.fusion = 'none'
    assert cfg.model.fusion == 'direct'
    path = tmp_path / 'a.py'
    cfg.dump(str(path))
    assert load_config(path).model.fusion == 'direct'
    assert config_name(path) == str(path)
    assert config_name(plain) == '<dict>'


def test_load_config_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match='gone.py'):
        load_config(tmp_path / 'gone.py')
    path = tmp_path / 'b.py'
    Config(dict(work_dir='x')).dump(str(path))
    with pytest.raises(KeyError, match=r'b\.py has no `model`'):
        load_config(path)


def test_datasets_inside_wrappers_are_the_same_objects():
    labelled = dict(type='HalluVideoDataset', pipeline=['a'])
    unlabelled = dict(type='HalluVideoDataset', pipeline=['b'])
    concat = dict(type='ConcatDataset', datasets=[
        dict(type='RepeatDataset', times=2, dataset=labelled), unlabelled
    ])
    found = pipeline_datasets(concat)
    assert found == [labelled, unlabelled]
    assert found[0] is labelled and found[1] is unlabelled
    assert innermost_dataset(concat, 'cfg') is labelled
    with pytest.raises(ValueError, match='cfg: .*has no pipeline'):
        innermost_dataset(dict(type='ConcatDataset', datasets=[]), 'cfg')


def test_to_builtin():
    cfg = Config(dict(a=dict(b=[1, (2, 3)])))
    out = to_builtin(cfg)
    assert out == dict(a=dict(b=[1, (2, 3)]))
    assert type(out) is dict and type(out['a']) is dict
