"""Checkpoints by URL, from a real HTTP server on 127.0.0.1: two URLs with
the same file name are two checkpoints, a hash in the name is checked, and
a URL that names no file is refused before any request, leaving nothing
behind."""
import hashlib
import os

import pytest
import torch

from hallucinet_plugin.utils import load_state_dict_from
from hallucinet_plugin.utils.checkpoint_sources import cache_name
from tests.conftest import serve_directory


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    root = tmp_path / 'served'
    for run, value in (('runA', 1.), ('runB', 2.)):
        os.makedirs(root / run)
        torch.save(dict(state_dict={'w': torch.full((2, ), value)}),
                   root / run / 'epoch_20.pth')
    good = root / 'zoo' / 'good.pth'
    os.makedirs(good.parent)
    torch.save(dict(state_dict={'w': torch.full((2, ), 3.)}), good)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    (root / 'zoo' / f'model_20220901-{digest[:8]}.pth').write_bytes(
        good.read_bytes())
    # The same name, other bytes: what a tampered mirror would serve.
    (root / 'runA' / f'model_20220901-{digest[:8]}.pth').write_bytes(
        (root / 'runA' / 'epoch_20.pth').read_bytes())
    with serve_directory(root) as (server, url):
        yield server, url, digest, tmp_path / 'torch_home' / 'hub'


def cached(hub) -> list:
    folder = hub / 'checkpoints'
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_same_file_name_under_two_urls_is_two_checkpoints(served):
    _, url, _, hub = served
    a = load_state_dict_from(f'{url}/runA/epoch_20.pth')
    b = load_state_dict_from(f'{url}/runB/epoch_20.pth')
    assert a['w'].tolist() == [1., 1.]
    assert b['w'].tolist() == [2., 2.]
    assert len(cached(hub)) == 2


def test_hash_in_the_name_is_checked(served):
    server, url, digest, hub = served
    name = f'model_20220901-{digest[:8]}.pth'
    assert cache_name(f'{url}/zoo/{name}') == (name, digest[:8])
    state = load_state_dict_from(f'{url}/zoo/{name}')
    assert state['w'].tolist() == [3., 3.]
    # Another URL with the same hashed name reuses the checked file.
    requests = server.requests
    load_state_dict_from(f'{url}/elsewhere/{name}')
    assert server.requests == requests
    # Other bytes under that name are refused, and nothing is kept.
    os.remove(hub / 'checkpoints' / name)
    with pytest.raises(RuntimeError, match=f'{name}.*SHA-256 prefix'):
        load_state_dict_from(f'{url}/runA/{name}')
    assert cached(hub) == []


@pytest.mark.parametrize('path', ['/runA/', '/', ''])
def test_url_without_a_file_name_is_refused_before_downloading(
        served, path):
    server, url, _, hub = served
    with pytest.raises(ValueError, match='names no checkpoint file'):
        load_state_dict_from(url + path)
    assert server.requests == 0
    assert cached(hub) == []
