"""Sphinx configuration: MyST Markdown pages, as OpenMMLab's docs.

Sphinx rather than MkDocs because the ecosystem this plugin lives in
(mmaction2, mmengine, mmcv) builds its docs with Sphinx and MyST, autodoc
reads the Google-style docstrings the code already has, and ``-W`` turns
every unresolved reference into an error.

Built with warnings as errors by ``tests/docs/test_docs_build.py``
(``sphinx-build -W --keep-going -b html docs docs/_build/html``). Besides
Sphinx's own checks (broken cross-references, missing documents, malformed
docstrings), :func:`check_api_coverage` fails the build when a class that
the plugin registers into mmaction2's registries, or a name in
``hallucinet_plugin.apis``, has no entry in the API reference or no
docstring.
"""
import os

from sphinx.util import logging

from hallucinet_plugin.version import __version__

project = 'hallucinet_plugin'
author = 'The hallucinet_plugin developers'
copyright = '2026, The hallucinet_plugin developers'
version = release = __version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'sphinx_copybutton',
]
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build']
myst_enable_extensions = ['colon_fence']
myst_heading_anchors = 3
# Warnings that are errors under -W: every cross-reference must resolve.
nitpicky = False

autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_default_options = {'show-inheritance': True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'furo'
html_title = f'hallucinet_plugin {release}'
# No fonts or scripts from the network: the docs build offline.
html_theme_options = {'navigation_with_keys': True}
copybutton_prompt_text = r'\$ '
copybutton_prompt_is_regexp = True

logger = logging.getLogger(__name__)


def public_api() -> dict:
    """Every name the API reference must document, by qualified name:
    the classes the plugin registers into mmaction2's registries and the
    names of ``hallucinet_plugin.apis``."""
    import mmaction.registry as registries
    from mmengine.registry import Registry

    import hallucinet_plugin  # noqa: F401 (registers the classes)
    import hallucinet_plugin.apis as apis

    names = {}
    for attr in dir(registries):
        registry = getattr(registries, attr)
        if not isinstance(registry, Registry):
            continue
        for obj in registry.module_dict.values():
            if obj.__module__.startswith('hallucinet_plugin.'):
                names[f'{obj.__module__}.{obj.__qualname__}'] = obj
    for name in apis.__all__:
        obj = getattr(apis, name)
        names[f'{obj.__module__}.{obj.__qualname__}'] = obj
    return names


def check_api_coverage(app, env) -> None:
    """Warn (an error under ``-W``) for every public name without an API
    entry or without a docstring."""
    documented = set(env.get_domain('py').objects)
    for name, obj in sorted(public_api().items()):
        if name not in documented:
            logger.warning(
                f'API reference: {name} is public (registered or in '
                f'hallucinet_plugin.apis) but has no entry in docs/api.md')
        if not (obj.__doc__ or '').strip():
            logger.warning(f'API reference: {name} has no docstring')


def setup(app):
    app.connect('env-check-consistency', check_api_coverage)
    # Offline builds: matplotlib and mmengine write caches here.
    os.environ.setdefault('MPLBACKEND', 'Agg')
