"""The feature-bank tests' set-up: a tiny teacher's stores extracted once
per test session from real videos, shared by the test files of this
folder even when pytest-xdist runs them in different workers."""
import json
import os

import pytest
from filelock import FileLock

from hallucinet_plugin.feature_bank.extraction import extract_teacher_features
from tests.feature_bank.bank_utils import make_data, save_teacher, write_config


def _extract(root) -> dict:
    data = make_data(root / 'data')
    ckpt = save_teacher(root / 'teacher.pth', seed=0)
    cfg = write_config(root / 'online.py', data, ckpt)
    stores = dict(
        # Every start a window, float32: compared with the online teacher.
        exact=extract_teacher_features(
            cfg,
            root / 'exact.lmdb',
            stride=1,
            dtype='float32',
            workers=0,
            progress=False)['store'],
        # Defaults (float16, stride 2 for 8-frame clips), two workers.
        default=extract_teacher_features(
            cfg, root / 'default.lmdb', batch_size=4, workers=2,
            progress=False)['store'])
    return dict(data=data, ckpt=ckpt, cfg=cfg, stores=stores)


@pytest.fixture(scope='session')
def setup(tmp_path_factory) -> dict:
    """The online config (``cfg``), its data, teacher checkpoint and the
    two stores extracted from it (``stores['exact']``, ``['default']``).
    Read-only: a test that changes a store copies it first."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        # The folder of this session that every worker's folder is in.
        root = root.parent
    root = root / 'feature_bank_setup'
    with FileLock(str(root) + '.lock'):
        done = root / 'setup.json'
        if not done.is_file():
            root.mkdir()
            done.write_text(json.dumps(_extract(root)))
        return json.loads(done.read_text())
