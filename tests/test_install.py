"""``pip install .`` (not editable), then what a user of the installed
package runs: the checkout's tools and demo, and a config of their own with
``custom_imports``, with no copy of the package's source in reach."""
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.tools.test_train_test_resume import data_options

CONFIG = 'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py'


def _run(args, cwd, env, timeout=600):
    proc = subprocess.run([sys.executable, *args],
                          cwd=cwd,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f'{args} failed:\n{proc.stdout[-3000:]}\n'
                                  f'{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """The package built and installed into its own site folder from a
    copy of the sources (the build writes into its source tree)."""
    root = tmp_path_factory.mktemp('install')
    src, site = root / 'src', root / 'site'
    shutil.copytree(
        osp.join(REPO, 'hallucinet_plugin'),
        src / 'hallucinet_plugin',
        ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'pyproject.toml', 'README.md'):
        shutil.copy(osp.join(REPO, name), src / name)
    # Offline: no build isolation (setuptools from this environment), no
    # dependencies (this environment has them).
    subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
        '--no-build-isolation', '--no-index', '--target',
        str(site),
        str(src)
    ],
                   check=True,
                   capture_output=True,
                   timeout=300)
    # A user's folder with the checkout's scripts and configs, but no
    # package source: nothing in reach shadows the installed package.
    user = root / 'user'
    for name in ('tools', 'configs', 'demo'):
        shutil.copytree(
            osp.join(REPO, name),
            user / name,
            ignore=shutil.ignore_patterns('__pycache__'))
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS='1')
    return dict(site=str(site), user=str(user), env=env)


def test_installed_package_is_the_one_imported(installed):
    proc = _run([
        '-c', 'import hallucinet_plugin, hallucinet_plugin.apis; '
        'print(hallucinet_plugin.__file__)'
    ], installed['user'], installed['env'])
    path = proc.stdout.strip().splitlines()[-1]
    assert path.startswith(installed['site']), path
    # Only the library is installed: no demo, tools or tests packages.
    top = sorted(
        p for p in os.listdir(installed['site'])
        if not p.endswith(('.dist-info', '.egg-info')))
    assert top == ['hallucinet_plugin'], top


@pytest.mark.slow
def test_tools_train_and_test_with_the_installed_package(
        installed, video_dataset):
    user, env = installed['user'], installed['env']
    work_dir = osp.join(user, 'work')
    options = data_options(video_dataset, 1)
    _run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
          *options], user, env)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    dump = osp.join(user, 'preds.pkl')
    _run(['tools/test.py', CONFIG, ckpt, '--work-dir', work_dir, '--dump',
          dump, '--cfg-options', *options], user, env)
    with open(dump, 'rb') as f:
        assert len(pickle.load(f)) == video_dataset['num_videos']


def test_own_config_with_custom_imports(installed, tmp_path):
    """A user's own recipe that only names the plugin in custom_imports."""
    config = tmp_path / 'my_config.py'
    config.write_text(
        "custom_imports = dict(imports=['hallucinet_plugin'], "
        'allow_failed_imports=False)\n'
        "model = dict(type='HalluciNet', backbone=dict(type='timm.resnet10t',"
        ' pretrained=False), cls_head=dict(type=\'TSNHead\', '
        'num_classes=4, in_channels=512))\n')
    script = ('import sys\n'
              'from mmengine.config import Config\n'
              'from mmengine.registry import init_default_scope\n'
              'from mmaction.registry import MODELS\n'
              'cfg = Config.fromfile(sys.argv[1])\n'
              "init_default_scope('mmaction')\n"
              'model = MODELS.build(cfg.model)\n'
              'import hallucinet_plugin\n'
              'print(type(model).__name__, hallucinet_plugin.__file__)\n')
    proc = _run(['-c', script, str(config)], installed['user'],
                installed['env'])
    name, path = proc.stdout.split()[-2:]
    assert name == 'HalluciNet' and path.startswith(installed['site'])


def test_benchmark_tool_runs_from_the_checkout(installed):
    """``tools/benchmark.py`` imports its harness from
    ``tools/analysis_tools/`` beside it and the installed package, with no
    path edits and no ``demo/`` import."""
    proc = _run(['tools/benchmark.py', '--help'], installed['user'],
                installed['env'])
    assert '--preset' in proc.stdout and 'efficient-mobile' in proc.stdout


def test_demo_entry_point_runs_from_the_checkout(installed):
    """``python -m demo`` from the folder that holds demo/, configs/ and
    tools/: the demos import the installed package, no path edits."""
    for sub in ([], ['dive'], ['monet-features'], ['data']):
        proc = _run(['-m', 'demo', *sub, '--help'], installed['user'],
                    installed['env'])
        assert f"usage: python -m demo{''.join(' ' + s for s in sub)} " \
            in proc.stdout, proc.stdout
    assert '--quick' in proc.stdout or sub == ['data']
