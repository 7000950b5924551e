"""The documentation site builds with warnings as errors: broken links
between pages, missing documents, malformed docstrings and public names
without an API entry (``docs/conf.py``) all fail it."""
import importlib.util
import os.path as osp
import subprocess
import sys

from tests.docs.docs_commands import REPO

DOCS = osp.join(REPO, 'docs')


def load_conf():
    spec = importlib.util.spec_from_file_location(
        'docs_conf', osp.join(DOCS, 'conf.py'))
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_api_page_lists_every_public_name():
    names = load_conf().public_api()
    # The registered classes and the user API are all found.
    assert {
        'hallucinet_plugin.models.recognizers.hallucinet.HalluciNet',
        'hallucinet_plugin.engine.hooks.hallucination_hook.'
        'HallucinationHook', 'hallucinet_plugin.deploy.inference.inference'
    } <= set(names)
    assert len(names) >= 40
    api = open(osp.join(DOCS, 'api.md')).read()
    missing = [name for name in names if f':: {name}\n' not in api]
    assert not missing, f'docs/api.md lacks {missing}'


def test_docs_build_without_warnings(tmp_path):
    proc = subprocess.run(
        [
            sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b',
            'html', '-d',
            str(tmp_path / 'doctrees'), DOCS,
            str(tmp_path / 'html')
        ],
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for page in ('index', 'get_started', 'user_guides/your_recipe',
                 'user_guides/deployment', 'results/demo', 'api',
                 'changelog'):
        assert (tmp_path / 'html' / f'{page}.html').is_file(), page
    api = (tmp_path / 'html' / 'api.html').read_text()
    # Generated from the docstrings, not only listed.
    assert 'teacher' in api and 'HallucinationLoss' in api
