"""The one Markdown table writer of the reports (benchmark, feature-bank
benchmark, demos)."""
from typing import Any, Callable, Sequence


def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[Any]],
                   fmt: Callable[[Any], str] = str) -> str:
    """A GitHub Markdown table.

    Args:
        header (Sequence[str]): Column titles.
        rows (Sequence[Sequence]): One sequence of cells per row, as many
            as ``header``.
        fmt (Callable): Turns a cell into text (``str`` by default).

    Returns:
        str: The table, lines joined with ``\\n``, no trailing newline.
    """
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f'a row of {len(row)} cells under a header of '
                             f'{len(header)}: {row}')
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(' --- ' for _ in header) + '|']
    lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)
