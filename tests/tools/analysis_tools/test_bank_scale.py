"""The feature bank at Kinetics scale (``tools/benchmark.py --preset
bank-scale`` over ``tools/analysis_tools/bank_scale.py``), as a real
subprocess at tiny sizes."""
import json

import pytest

from tests.conftest import run_tool


def test_bank_scale_benchmark_writes_its_rows(tmp_path):
    """``--preset bank-scale`` at tiny sizes: one row per (N, W) with the
    keys the docs table reads, ratios measured in the same run."""
    out = tmp_path / 'bank_scale'
    run_tool('tools/benchmark.py', '--preset', 'bank-scale', '--sizes',
             '300', '--windows', '4', '8', '--w72-size', '100', '--dim',
             '16', '--reads', '300', '--loader-samples', '128', '--out',
             str(out))
    rows = json.loads((out / 'bank_scale.json').read_text())
    assert [(r['n'], r['windows']) for r in rows] == [(300, 4), (100, 8)]
    for row in rows:
        for key in ('reads_per_s', 'memmap_reads_per_s', 'read_ratio',
                    'loader_ratio', 'open_ms', 'open_rss_mb',
                    'writes_per_s', 'writes_per_s_2proc', 'write_ratio'):
            assert row[key] > 0, key
        assert row['read_ratio'] == pytest.approx(
            row['reads_per_s'] / row['memmap_reads_per_s'])
    assert (out / 'bank_scale.md').read_text().count('\n| ') == 3
    assert not (out / 'stores' / 'n300_w4').exists()
