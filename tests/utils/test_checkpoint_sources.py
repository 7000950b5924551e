"""Checkpoints from URLs and under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD are
read weights only: a payload in the file never runs. A real HTTP server on
127.0.0.1 serves them; the payload would create a marker folder."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mmengine_checkpoint

from hallucinet_plugin.utils import (
    load_state_dict_from,
    use_safe_checkpoint_loaders,
)
from hallucinet_plugin.utils.checkpoint_sources import cache_name
from tests.conftest import REPO, serve_directory
from tests.tools.test_train_test_resume import CONFIG, data_options


class _Payload:
    """Pickled as a call of ``os.mkdir(marker)``: full unpickling runs it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp('served')
    marker = str(root / 'PAYLOAD_RAN')
    weights = {'fc.weight': torch.arange(6.).reshape(2, 3)}
    torch.save(dict(state_dict=weights), root / 'good.pth')
    torch.save(dict(state_dict=weights, meta=_Payload(marker)),
               root / 'evil.pth')
    with serve_directory(root) as (_, url):
        yield dict(root=root, marker=marker, weights=weights, url=url)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    # Downloads go to torch's hub cache: a fresh one per test.
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path / 'torch_home'


def test_url_is_downloaded_then_read_weights_only(served, hub):
    state = load_state_dict_from(f"{served['url']}/good.pth",
                                 key_name='teacher_ckpt')
    torch.testing.assert_close(state['fc.weight'],
                               served['weights']['fc.weight'])
    assert [p.name for p in (hub / 'hub' / 'checkpoints').iterdir()
            if p.name.endswith('-url-good.pth')]
    with pytest.raises(RuntimeError, match='not retried with weights_only'):
        load_state_dict_from(f"{served['url']}/evil.pth",
                             key_name='teacher_ckpt')
    assert not osp.exists(served['marker'])


def test_unknown_scheme_is_refused_not_guessed():
    with pytest.raises(FileNotFoundError, match='teacher_ckpt not found'):
        load_state_dict_from('s3://bucket/x.pth', key_name='teacher_ckpt')


def test_mmcls_scheme_gives_the_backbone(hub):
    """``mmcls://NAME`` through mmengine's loader: the classifier's backbone
    (keys without ``backbone.``), as mmengine's own loader gives it; the
    zoo file is taken from torch's hub cache, where a download would put
    it."""
    name, url = sorted(mmengine_checkpoint.get_mmcls_models().items())[0]
    cached, _ = cache_name(url)
    os.makedirs(hub / 'hub' / 'checkpoints')
    torch.save(
        dict(state_dict={
            'backbone.conv.weight': torch.ones(2),
            'head.fc.weight': torch.zeros(3)
        }), hub / 'hub' / 'checkpoints' / cached)
    use_safe_checkpoint_loaders()
    checkpoint = CheckpointLoader.load_checkpoint(f'mmcls://{name}')
    assert list(checkpoint) == ['state_dict']
    assert list(checkpoint['state_dict']) == ['conv.weight']
    with pytest.raises(KeyError, match='no model'):
        CheckpointLoader.load_checkpoint('mmcls://no_such_model')


def _tool_test(ckpt, video_dataset, tmp_path, **env):
    return subprocess.run([
        sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        *data_options(video_dataset, 1)
    ],
                          cwd=REPO,
                          env=dict(
                              os.environ,
                              TORCH_HOME=str(tmp_path / 'torch_home'),
                              **env),
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.slow
def test_tools_never_run_a_payload(served, video_dataset, tmp_path):
    """``tools/test.py`` with the checkpoint as a URL, and with a local file
    under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: refused, the payload not run."""
    proc = _tool_test(f"{served['url']}/evil.pth", video_dataset, tmp_path)
    assert proc.returncode != 0 and not osp.exists(served['marker']), \
        proc.stderr[-3000:]
    # Named, with what torch found, and without torch's advice to retry
    # with weights_only=False (not even in a chained traceback).
    assert re.search(r'checkpoint http://127\.0\.0\.1:\d+/evil\.pth: '
                     r'torch\.load\(weights_only=True\) failed: .*'
                     r'posix\.mkdir', proc.stderr), proc.stderr[-3000:]
    assert 'will likely succeed' not in proc.stderr
    proc = _tool_test(
        str(served['root'] / 'evil.pth'),
        video_dataset,
        tmp_path,
        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    assert proc.returncode != 0 and not osp.exists(served['marker']), \
        proc.stderr[-3000:]
