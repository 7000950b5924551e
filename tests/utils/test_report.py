import pytest

from hallucinet_plugin.utils.report import markdown_table


def test_markdown_table():
    table = markdown_table(['a', 'b'], [[1, 2.5], ['x', None]],
                           fmt=lambda v: '-' if v is None else str(v))
    assert table.split('\n') == [
        '| a | b |', '| --- | --- |', '| 1 | 2.5 |', '| x | - |'
    ]


def test_markdown_table_refuses_ragged_rows():
    with pytest.raises(ValueError, match='a row of 1 cells'):
        markdown_table(['a', 'b'], [['only one']])
