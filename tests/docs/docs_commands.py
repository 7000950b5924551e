"""The shell commands and repository paths of the documentation, read from
the pages themselves, so that tests run what the docs say.

A page marks a ```bash block with a comment on the line before it (MyST's
``% ...``, or ``<!-- ... -->`` in the READMEs, which GitHub renders):

- ``% docs-test: run``: the block runs verbatim, in page order, in a
  sandbox where the demo has run at quick scale
  (``tests/demo/test_demo.py``);
- ``% docs-test: quick TOOL``: an end-to-end test runs that command of
  TOOL (a demo: ``demo`` for ``python -m demo``, ``demo dive`` for
  ``python -m demo dive``, ...), as the page writes it, plus the demo's
  ``--quick`` (it calls
  :func:`documented_commands`; :data:`QUICK_RUNS` names the tests);
- ``% docs-test: skip REASON``: not run (a measurement that takes many
  minutes), with the reason.

Every block at the demo's scale (it names the demo's data, work dir,
configs or tools) must carry one of them (``tests/docs/
test_docs_commands.py``). Every other command is parsed by its tool's own
argument parser, and the repository paths it names must exist.

Not a conftest.py, for the reason given in ``tests/configs/config_utils``.
"""
import glob
import os.path as osp
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from demo.__main__ import COMMANDS as DEMO_COMMANDS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# The pages whose commands and paths are checked: the docs site, the
# README and the config folders' READMEs (included into the site).
PAGES = sorted(
    [osp.join(REPO, 'README.md')] +
    glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True) +
    glob.glob(osp.join(REPO, 'configs', '**', 'README.md'), recursive=True))
PAGES = [p for p in PAGES if '_build' not in p.split(osp.sep)]

# What makes a command "at the demo's scale": it reads or writes the
# demo's data, work dir or configs, or runs a demo.
DEMO_SCALE = re.compile(
    r'work_dirs/demo\b|data/demo\b|configs/demo/|configs/mtl_aqa/demo/|'
    r'configs/monet/features/demo/|-m demo\b')
# Each `quick` demo and the test that runs its documented commands.
QUICK_RUNS = {
    'demo': 'tests/demo/test_demo.py',
    'demo dive': 'tests/demo/test_dive_demo.py',
    'demo monet-features': 'tests/demo/test_monet_feature_demo.py',
}
# Top-level folders of the repository: a code span or argument starting
# with one of them is a repository path that must exist.
REPO_DIRS = ('configs/', 'tools/', 'demo/', 'docs/', 'hallucinet_plugin/',
             'tests/', '.ci/')
PLACEHOLDER = re.compile(r'[<>*{}\[\]$]|\.\.\.')
# Capitalised words that are file names, not placeholders such as CONFIG.
FILE_WORDS = {'README', 'LICENSE', 'CITATION'}
MARKER = re.compile(r'^(?:%|<!--)\s*docs-test:\s*(run|quick|skip)\b\s*'
                    r'(.*?)\s*(?:-->)?$')


@dataclass
class Block:
    """A fenced shell block of a page."""
    page: str  # relative to the repository
    line: int  # 1-based line of the opening fence
    text: str
    marker: Optional[str] = None  # 'run' | 'quick' | 'skip'
    marker_arg: str = ''
    commands: List[str] = field(default_factory=list)

    def where(self) -> str:
        return f'{self.page}:{self.line}'


def rel(path: str) -> str:
    return osp.relpath(path, REPO)


def shell_blocks(page: str) -> List[Block]:
    """The ```bash / ```shell blocks of a page with their markers."""
    lines = open(page, encoding='utf-8').read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r'^(\s*)(`{3,}|~{3,})\s*(\w*)', lines[i])
        if not fence:
            i += 1
            continue
        ticks, lang = fence.group(2), fence.group(3)
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            body.append(lines[i])
            i += 1
        i += 1
        if lang not in ('bash', 'shell', 'sh'):
            continue
        block = Block(rel(page), start + 1, '\n'.join(body))
        previous = lines[start - 1].strip() if start else ''
        marker = MARKER.match(previous)
        if marker:
            block.marker, block.marker_arg = marker.group(1), marker.group(
                2).strip()
        block.commands = join_continuations(body)
        blocks.append(block)
    return blocks


def join_continuations(body: List[str]) -> List[str]:
    """Logical command lines: continuations joined, comments dropped."""
    commands, current = [], ''
    for line in body:
        stripped = line.split(' # ')[0].rstrip() if not line.lstrip(
        ).startswith('#') else ''
        if current:
            current += ' ' + stripped.strip()
        else:
            current = stripped.strip()
        if current.endswith('\\'):
            current = current[:-1].rstrip()
            continue
        if current:
            commands.append(current)
        current = ''
    if current:
        commands.append(current)
    return commands


def all_blocks() -> List[Block]:
    return [block for page in PAGES for block in shell_blocks(page)]


def tool_argv(command: str,
              variables: Optional[Dict[str, str]] = None) -> Optional[tuple]:
    """``(tool, argv)`` of a ``python tools/X.py ...`` or ``torchrun ...
    tools/X.py ...`` command, or of a demo's ``python -m demo [SUBCOMMAND]
    ...`` (the tool ``demo`` or ``demo SUBCOMMAND``), shell variables
    substituted; None for other commands."""
    variables = variables or {}
    words = shlex.split(command, comments=True)
    words = [
        re.sub(r'\$(\w+)', lambda m: variables.get(m.group(1), m.group(0)),
               word) for word in words
    ]
    if words[:1] in (['python'], ['python3']) and words[1:3] == ['-m', 'demo']:
        argv = words[3:]
        if argv[:1] and argv[0] in DEMO_COMMANDS:
            return f'demo {argv[0]}', argv[1:]
        return 'demo', argv
    for index, word in enumerate(words):
        if word.startswith('tools/') and word.endswith('.py'):
            if index and (words[0] in ('python', 'python3', 'torchrun')):
                return word, words[index + 1:]
    return None


def documented_commands(page: str, tool: str) -> List[List[str]]:
    """The arguments of every command of ``tool`` in the ``quick``-marked
    blocks of a page, in page order. A test that runs them compares the
    list with what it runs, so it fails when the docs change.

    Raises:
        AssertionError: when the page has no such block.
    """
    found = [
        tool_argv(command)[1]
        for block in shell_blocks(osp.join(REPO, page))
        if block.marker == 'quick' and block.marker_arg == tool
        for command in block.commands
        if tool_argv(command) and tool_argv(command)[0] == tool
    ]
    assert found, f'{page} has no "% docs-test: quick {tool}" block'
    return found


def is_placeholder(path: str) -> bool:
    """Whether a path stands for many (``<name>``, ``*``, ``CONFIG``)."""
    capitals = set(re.findall(r'\b[A-Z][A-Z_0-9]{2,}\b', path))
    return bool(PLACEHOLDER.search(path) or capitals - FILE_WORDS)


def code_span_paths(page: str) -> List[tuple]:
    """``(line, path)`` of every code span of a page that names a file or
    folder of the repository (placeholders such as ``<name>``, ``*`` or
    ``CONFIG`` excepted), and of every relative Markdown link of the
    README and the config READMEs."""
    found = []
    in_fence = False
    for number, line in enumerate(
            open(page, encoding='utf-8').read().splitlines(), 1):
        if re.match(r'^\s*(`{3,}|~{3,})', line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for span in re.findall(r'`([^`\s]+)`', line):
            if span.startswith(REPO_DIRS) and not is_placeholder(span):
                found.append((number, span.rstrip('.,:;')))
        if not rel(page).startswith('docs'):
            for target in re.findall(r'\]\(([^)\s#]+)', line):
                if '://' not in target:
                    found.append((number, osp.normpath(
                        osp.join(osp.dirname(rel(page)), target))))
    return found
