"""The diving demo: its metrics from tools/test.py dumps, and the whole job,
quick, through the same subprocesses a user runs."""
import json
import pickle

import pytest
import torch

from demo.dive_demo import GRID, GRID_BASELINE, STAGE1, DiveDemo, parse_args
from demo.dive_demo_data import DIVE_PROPERTIES
from demo.dive_demo_report import (
    dive_metrics,
    markdown_table,
    summarize,
    with_mean_accuracy,
)
from tests.conftest import run_tool
from tests.docs.docs_commands import documented_commands


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


def test_summary_rows_and_differences():
    """Mean accuracy over the properties per seed, and each row's
    difference to vanilla with its interval, in the table."""
    def run(position, armstand, spearman):
        return dict(
            metrics=with_mean_accuracy({
                'acc/position': position,
                'acc/armstand': armstand,
                'aqa/spearman': spearman
            }),
            final_loss_hallu=None)

    runs = dict(
        vanilla=[run(40, 60, 10), run(50, 60, 20), run(45, 60, 15)],
        hallucinet=[run(60, 70, 30), run(70, 70, 40), run(65, 70, 35)])
    meta = dict(
        splits=dict(train=dict(num_dives=8), test=dict(num_dives=4)),
        params=dict(num_teacher_clips=12),
        properties=dict(position=3, armstand=2))
    teacher = dict(top1=75.0, sense=90.0, somersaults=80.0, clips=2,
                   chance=12.5)
    results = summarize(runs, teacher, meta, dict(teacher=3, students=1),
                        1.0, {}, 60.0, 'cmd')
    vanilla = results['models']['vanilla']
    assert vanilla['metrics']['acc/mean']['values'] == [50, 55, 52.5]
    assert 'diff' not in vanilla
    diff = results['models']['hallucinet']['diff']
    assert diff['acc/position']['diff'] == pytest.approx(20)
    # Both spreads equal: the interval is the pooled t-interval.
    assert diff['acc/mean']['diff'] == pytest.approx(15)
    assert diff['acc/armstand']['low'] == diff['acc/armstand']['high'] == 10
    table = markdown_table(results)
    assert '| model | position | armstand | mean | Spearman |' in table
    assert '| hallucinet | 65.0 +- 5.0 | 70.0 +- 0.0 | 67.5 +- 2.5 |' in table
    assert '| hallucinet | +20.0 [' in table and '+10.0 [+10.0, +10.0] *' \
        in table
    assert 'top-1 75.0% on 2 held-out clips' in table


def run_log(run_dir):
    """mmengine's log files of a training run (tools/train.py)."""
    return ''.join(p.read_text() for p in sorted(run_dir.glob('*/*.log')))


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    # What the dives guide runs, at quick scale: the demo, then (in
    # test_quick_table9_grid) its --pretrain grid.
    assert documented_commands('docs/user_guides/dives_aqa.md',
                               'demo dive') == [[], [],
                                                         ['--pretrain'],
                                                         ['--quick']]
    root = tmp_path_factory.mktemp('dive_demo')
    work_dir, data_root = root / 'work', root / 'data'
    proc = run_tool('-m', 'demo', 'dive', '--quick', '--seeds', '2',
                    '--work-dir', str(work_dir), '--data-root',
                    str(data_root), timeout=900)
    return work_dir, data_root, proc


@pytest.mark.slow
def test_quick_dive_demo_end_to_end(quick_demo):
    work_dir, data_root, proc = quick_demo
    assert '| model | position | armstand | rotation_type' in proc.stdout
    assert (data_root / 'meta.json').is_file()
    assert (work_dir / 'teacher' / 'teacher.pth').is_file()
    results = json.loads((work_dir / 'results.json').read_text())
    names = ('vanilla', 'hallucinet', 'hallucinet-unlabelled')
    assert list(results['models']) == list(names)
    for entry in results['models'].values():
        metrics = entry['metrics']
        for name in DIVE_PROPERTIES:
            assert 0 <= metrics[f'acc/{name}']['mean'] <= 100
            assert len(metrics[f'acc/{name}']['values']) == 2
        assert 'aqa/spearman' in metrics and 'acc/mean' in metrics
    for name in names[1:]:
        diff = results['models'][name]['diff']['acc/mean']
        assert diff['low'] is not None and diff['low'] <= diff['high']
    # Only HalluciNet hallucinates; all are tested student-only.
    assert 'final_loss_hallu' in results['models']['hallucinet']
    assert 'final_loss_hallu' not in results['models']['vanilla']
    assert results['dataset']['test_dives'] == 2
    assert results['dataset']['unlabelled_dives'] == 2
    assert 0 <= results['teacher']['top1'] <= 100
    # The unlabelled dives reached training, without their labels.
    log = run_log(work_dir / 'hallucinet-unlabelled' / 'seed0')
    assert 'hallu_unlabelled' in log
    # The rows' numbers are the last validation of each training run, on
    # the test dives: tools/test.py on the checkpoint gives the same (the
    # plain row and the one with masked unlabelled samples).
    demo = DiveDemo(
        parse_args(['--quick', '--work-dir',
                    str(work_dir), '--data-root',
                    str(data_root)]))
    for name in ('vanilla', 'hallucinet-unlabelled'):
        ckpt = (work_dir / name / 'seed0' / 'last_checkpoint').read_text()
        dump = work_dir / f'{name}_test.pkl'
        run_tool('tools/test.py', demo.student_config(name), ckpt.strip(),
                 '--work-dir', str(work_dir / 'test_again'), '--dump',
                 str(dump), '--cfg-options', *demo.data_options(),
                 'model.teacher=None')
        with open(dump, 'rb') as f:
            preds = pickle.load(f)
        assert len(preds) == 2
        assert set(preds[0]['pred_dive_labels']) == set(DIVE_PROPERTIES)
        tested = with_mean_accuracy(dive_metrics(str(dump)))
        logged = {
            key: stats['values'][0]
            for key, stats in results['models'][name]['metrics'].items()
        }
        assert tested == pytest.approx(logged)
    assert markdown_table(results) in proc.stdout
    assert (work_dir / 'results.md').read_text().strip() == \
        markdown_table(results)
    assert (work_dir / 'results.png').stat().st_size > 0


@pytest.mark.slow
def test_quick_table9_grid(quick_demo):
    """--pretrain: stage 1 on the main demo's videos without and with
    hallucination, stage 2 from each, the 2 x 2 grid in the table; the
    copied tensors are those of the stage-1 checkpoints."""
    work_dir, data_root, _ = quick_demo
    pretrain_root = work_dir.parent / 'pretrain_data'
    proc = run_tool('-m', 'demo', 'dive', '--quick', '--seeds', '1',
                    '--models', 'vanilla', '--pretrain', '--work-dir',
                    str(work_dir), '--data-root', str(data_root),
                    '--pretrain-data-root', str(pretrain_root), timeout=900)
    # The teacher of the first run is reused, not trained again.
    assert 'teacher.pth exists, reusing it' in proc.stdout
    results = json.loads((work_dir / 'results.json').read_text())
    table9 = results['table9']
    assert set(table9['stage1']['runs']) == set(STAGE1)
    assert list(table9['models']) == list(GRID)
    for name, entry in table9['models'].items():
        assert 0 <= entry['metrics']['acc/mean']['mean'] <= 100
        assert ('diff' in entry) == (name != GRID_BASELINE)
    assert 'final_loss_hallu' in table9['models']['vanilla-pt_hallucinet']
    assert '| pre-training hallucinet |' in proc.stdout
    for name, (_, _, stage1) in GRID.items():
        log = run_log(work_dir / name / 'seed0')
        ckpt = table9['stage1']['runs'][stage1]['checkpoint']
        assert ckpt in log
    # Both kinds copy the backbone; only hallucinet -> hallucinet also the
    # hallucination head.
    both = run_log(work_dir / 'hallucinet-pt_hallucinet' / 'seed0')
    assert "'hallu_head.'" in both
