"""The results beside their configs: every ``metafile.yml`` under
``configs/`` (mmaction2's model-index format) against its folder.

Reads YAML and Markdown only; builds no model."""
import glob
import math
import os.path as osp
import re
from typing import Dict, List

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')

# Config folders with trained or measured results: each has both files.
RESULT_FOLDERS = ('configs/demo', 'configs/efficient',
                  'configs/monet/features', 'configs/mtl_aqa')

# A number as the README tables write it: 18.8, +11.1, [-7.0, -0.682.
# Not the tail of a word or of another number (x112, 1.5, 0.41-0.47).
NUMBER = re.compile(r'(?<![\w.])[-+]?\d+(?:\.\d+)?')

METAFILES = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(CONFIGS, '**', 'metafile.yml'),
                       recursive=True))


def load(metafile: str) -> Dict:
    """The parsed ``metafile`` (a path relative to the repository)."""
    with open(osp.join(REPO, metafile)) as f:
        return yaml.safe_load(f)


def readme_numbers(folder: str) -> List[float]:
    """Every number written in ``folder``'s README.md."""
    with open(osp.join(REPO, folder, 'README.md')) as f:
        return [float(n) for n in NUMBER.findall(f.read())]


def numeric_metrics(model: Dict) -> List[tuple]:
    """``(dataset, metric, value)`` of every numeric metric of a model."""
    found = []
    for result in model.get('Results') or []:
        for key, value in (result.get('Metrics') or {}).items():
            if isinstance(value, (int, float)) and not isinstance(
                    value, bool):
                found.append((result.get('Dataset'), key, float(value)))
    return found


def test_result_folders_have_readme_and_metafile():
    for folder in RESULT_FOLDERS:
        for name in ('README.md', 'metafile.yml'):
            assert osp.isfile(osp.join(REPO, folder, name)), \
                f'{folder} has no {name}'
    assert METAFILES, 'no metafile.yml under configs/'


@pytest.mark.parametrize('metafile', METAFILES)
def test_metafile_structure(metafile):
    meta = load(metafile)
    folder = osp.dirname(metafile)
    assert isinstance(meta, dict), f'{metafile}: not a mapping'
    assert meta.get('Collections'), f'{metafile}: no Collections'
    assert meta.get('Models'), f'{metafile}: no Models'
    assert osp.isfile(osp.join(REPO, folder, 'README.md')), \
        f'{folder} has no README.md'

    collections = set()
    for collection in meta['Collections']:
        name = collection.get('Name')
        assert name, f'{metafile}: a collection without a Name'
        assert collection.get('README') == f'{folder}/README.md', \
            f'{metafile}: collection {name!r} points to ' \
            f'{collection.get("README")!r}, not its folder\'s README'
        paper = collection.get('Paper')
        if paper is not None:
            assert paper.get('URL', '').startswith('https://') and \
                paper.get('Title'), f'{metafile}: {name!r} paper'
        collections.add(name)

    for model in meta['Models']:
        config = model.get('Config', '')
        assert osp.isfile(osp.join(REPO, config)), \
            f'{metafile}: {config!r} does not exist'
        assert config.startswith(f'{folder}/'), \
            f'{metafile}: {config!r} is not in {folder}'
        stem = osp.splitext(osp.basename(config))[0]
        assert model.get('Name') == stem, \
            f'{metafile}: Name {model.get("Name")!r} is not {stem!r}'
        assert model.get('In Collection') in collections, \
            f'{metafile}: {stem} is in {model.get("In Collection")!r}, ' \
            f'not one of {sorted(collections)}'
        assert model.get('Results'), f'{metafile}: {stem} has no Results'
        for result in model['Results']:
            assert result.get('Dataset') and result.get('Task') and \
                result.get('Metrics'), f'{metafile}: {stem}: {result}'
        assert 'Weights' not in model, \
            f'{metafile}: {stem} names weights; none are published'


@pytest.mark.parametrize('metafile', METAFILES)
def test_metafile_numbers_are_in_readme(metafile):
    """Every numeric metric (Top 1 Accuracy and the rest) is a number of
    the README's tables: the two files cannot drift apart."""
    numbers = readme_numbers(osp.dirname(metafile))
    missing = [(model['Name'], dataset, key, value)
               for model in load(metafile)['Models']
               for dataset, key, value in numeric_metrics(model)
               if not any(math.isclose(value, n, abs_tol=1e-9)
                          for n in numbers)]
    assert not missing, f'{metafile}: not in the README: {missing}'


def test_model_names_are_unique():
    seen = {}
    for metafile in METAFILES:
        for model in load(metafile)['Models']:
            name = model['Name']
            assert name not in seen, \
                f'{name} is in {seen.get(name)} and {metafile}'
            seen[name] = metafile
