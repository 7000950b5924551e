"""The diving demo: its metrics from tools/test.py dumps, and the whole job,
quick, through the same subprocesses a user runs."""
import json
import pickle

import pytest
import torch

from demo.dive_demo import dive_metrics, markdown_table
from demo.dive_demo_data import DIVE_PROPERTIES
from tests.conftest import run_tool


def test_dive_metrics_from_a_dump(tmp_path):
    # As tools/test.py --dump writes them: data samples as dicts.
    preds = [
        dict(
            pred_dive_scores=dict(
                position=torch.tensor([0.1, 0.7, 0.2]),
                ss_no=torch.tensor([0.6, 0.4])),
            pred_dive_labels=dict(position=torch.tensor(1)),
            pred_quality=torch.tensor(q),
            dive_labels=dict(position=1, ss_no=ss),
            score=s) for q, ss, s in ((10.0, 0, 30.0), (20.0, 1, 40.0),
                                      (15.0, 0, 50.0))
    ]
    path = tmp_path / 'preds.pkl'
    with open(path, 'wb') as f:
        pickle.dump(preds, f)
    metrics = dive_metrics(str(path))
    assert metrics['acc/position'] == 100.0
    assert metrics['acc/ss_no'] == pytest.approx(200 / 3)
    # Ranks of (10, 20, 15) against (30, 40, 50): rho = 0.5.
    assert metrics['aqa/spearman'] == pytest.approx(50.0)


@pytest.mark.slow
def test_quick_dive_demo_end_to_end(tmp_path):
    work_dir, data_root = tmp_path / 'work', tmp_path / 'data'
    proc = run_tool('tools/dive_demo.py', '--quick', '--seeds', '1',
                    '--work-dir', str(work_dir), '--data-root',
                    str(data_root), timeout=900)
    assert '| model | position | armstand | rotation_type' in proc.stdout
    assert (data_root / 'meta.json').is_file()
    assert (work_dir / 'teacher' / 'teacher.pth').is_file()
    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results['models']) == {'vanilla', 'hallucinet'}
    for entry in results['models'].values():
        for name in DIVE_PROPERTIES:
            assert 0 <= entry[f'acc/{name}']['mean'] <= 100
        assert 'aqa/spearman' in entry
    # Only HalluciNet hallucinates; both are tested student-only.
    assert 'final_loss_hallu' in results['models']['hallucinet']
    assert 'final_loss_hallu' not in results['models']['vanilla']
    assert results['dataset']['test_dives'] == 2
    for name in ('vanilla', 'hallucinet'):
        with open(work_dir / name / 'seed0' / 'test_predictions.pkl',
                  'rb') as f:
            preds = pickle.load(f)
        assert len(preds) == 2
        assert set(preds[0]['pred_dive_labels']) == set(DIVE_PROPERTIES)
    assert markdown_table(results) in proc.stdout
    assert (work_dir / 'results.md').read_text().strip() == \
        markdown_table(results)
