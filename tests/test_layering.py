"""The package's architecture, checked so that it cannot regress.

- The layers of ``pyproject.toml``'s import-linter contract (``lint-imports``,
  a maintained checker that follows every import, including those inside
  functions): applications above the engine, the engine above the
  components, components independent of each other.
- Nothing in the package imports the checkout's ``tools/``, ``demo/`` or
  ``tests/``, or derives paths from its own location (after ``pip install
  .`` there is no checkout around it).
- No module grows past :data:`MAX_LINES`.
"""
import ast
import glob
import os.path as osp
import shutil
import subprocess

from tests.conftest import REPO

PACKAGE = osp.join(REPO, 'hallucinet_plugin')
MAX_LINES = 600
CHECKOUT_ONLY = ('tools', 'demo', 'tests')


def _modules():
    return sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True))


def test_import_layers():
    lint = shutil.which('lint-imports')
    assert lint, 'import-linter is not installed (requirements.txt)'
    proc = subprocess.run([lint, '--no-cache'],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Contracts: 1 kept, 0 broken.' in proc.stdout


def _imported_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or ''


def test_package_stands_alone():
    offences = []
    for path in _modules():
        rel = osp.relpath(path, REPO)
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        for name in _imported_names(tree):
            if name.split('.')[0] in CHECKOUT_ONLY:
                offences.append(f'{rel} imports {name}')
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == '__file__':
                offences.append(f'{rel}:{node.lineno} reads __file__')
    assert not offences, '\n'.join(offences)


def test_modules_stay_small():
    sizes = {}
    for path in _modules():
        with open(path, encoding='utf-8') as f:
            sizes[osp.relpath(path, REPO)] = sum(1 for _ in f)
    big = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert not big, f'modules over {MAX_LINES} lines: {big}'

