"""Docs that cannot rot: every documented command is accepted by its tool's
own argument parser, every repository path a page names exists, and every
command at the demo's scale is run by a test (see ``docs_commands``)."""
import argparse
import contextlib
import importlib.util
import io
import os.path as osp
import sys

import pytest

from tests.docs.docs_commands import (
    DEMO_SCALE,
    PAGES,
    QUICK_RUNS,
    REPO,
    all_blocks,
    code_span_paths,
    is_placeholder,
    rel,
    tool_argv,
)

BLOCKS = all_blocks()


def tool_commands() -> list:
    """``(where, tool, argv)`` of every tool command of every page, shell
    variables set earlier in the block substituted."""
    found = []
    for block in BLOCKS:
        variables = {}
        for command in block.commands:
            name, _, value = command.partition('=')
            if value and name.isidentifier() and ' ' not in name:
                # CKPT=$(cat ...) stands for a checkpoint path.
                variables[name] = 'CKPT.pth' if value.startswith(
                    '$(') else value
                continue
            parsed = tool_argv(command, variables)
            if parsed:
                found.append((block.where(), *parsed))
    return found


COMMANDS = tool_commands()


def test_pages_and_commands_found():
    pages = {rel(p) for p in PAGES}
    assert {'README.md', 'docs/get_started.md',
            'docs/user_guides/your_recipe.md'} <= pages
    tools = {tool for _, tool, _ in COMMANDS}
    assert {'demo', 'demo dive', 'tools/train.py', 'tools/export_onnx.py'} \
        <= tools


def test_demo_scale_blocks_are_run_by_a_test():
    unmarked = [
        block.where() for block in BLOCKS
        if DEMO_SCALE.search(block.text) and block.marker is None
    ]
    assert not unmarked, (
        'shell blocks at the demo scale need "% docs-test: run", '
        f'"quick TOOL" or "skip REASON" on the line before: {unmarked}')
    for block in BLOCKS:
        if block.marker == 'skip':
            assert block.marker_arg, f'{block.where()}: skip needs a reason'
        if block.marker == 'quick':
            assert block.marker_arg in QUICK_RUNS, block.where()
            # The test that runs it reads it from this page.
            test = open(osp.join(REPO, QUICK_RUNS[block.marker_arg])).read()
            assert f"'{block.page}'" in test, (
                f'{block.where()}: {QUICK_RUNS[block.marker_arg]} does not '
                f'run the command of {block.page}')


class Parsed(Exception):
    """Raised by the patched parser: the arguments were accepted."""


@contextlib.contextmanager
def parse_only():
    """Make every ``ArgumentParser.parse_args`` stop the tool right after a
    successful parse."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    argparse.ArgumentParser.parse_args = parse_args
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original


def parse_with_tool(tool: str, argv: list) -> str:
    """Run ``tool``'s ``main`` up to its argument parsing; returns argparse's
    complaint, or '' when the arguments were accepted."""
    if tool.split()[0] == 'demo':
        # python -m demo [SUBCOMMAND] ARGV
        from demo.__main__ import main as demo_main
        path, argv = 'demo', tool.split()[1:] + argv

        def main():
            demo_main(sys.argv[1:])
    else:
        path = osp.join(REPO, tool)
        spec = importlib.util.spec_from_file_location(
            'docs_tool_' + osp.splitext(osp.basename(tool))[0], path)
        module = importlib.util.module_from_spec(spec)
        # As `python tools/x.py` runs it: its folder first on the path
        # (tools/benchmark.py imports analysis_tools beside it).
        sys.path.insert(0, osp.dirname(path))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(osp.dirname(path))
        main = module.main
    old_argv, stderr = sys.argv, io.StringIO()
    sys.argv = [path, *argv]
    try:
        with parse_only(), contextlib.redirect_stderr(stderr):
            main()
    except Parsed:
        return ''
    except SystemExit:
        return stderr.getvalue() or 'exited'
    finally:
        sys.argv = old_argv
    return 'main() returned without parsing its arguments'


@pytest.mark.parametrize(
    'where,tool,argv', COMMANDS,
    ids=[f'{where}:{tool}' for where, tool, _ in COMMANDS])
def test_documented_command_parses(where, tool, argv):
    assert tool.startswith('demo') or osp.isfile(osp.join(REPO, tool)), \
        f'{where}: no {tool}'
    complaint = parse_with_tool(tool, argv)
    assert not complaint, f'{where}: {tool} {" ".join(argv)}\n{complaint}'
    missing = [
        arg for arg in argv if arg.startswith(('configs/', 'tools/'))
        and not is_placeholder(arg) and not osp.exists(osp.join(REPO, arg))
    ]
    assert not missing, f'{where}: no such file {missing}'


def test_repository_paths_exist():
    missing = [
        f'{rel(page)}:{line}: {path}' for page in PAGES
        for line, path in code_span_paths(page)
        if not osp.exists(osp.join(REPO, path))
    ]
    assert not missing, 'pages name files that do not exist:\n' + '\n'.join(
        missing)
