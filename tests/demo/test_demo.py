"""The README's main job, fast: every stage through the same code path, run
as the docs write it, and the docs' commands on what it trained."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import run_tool

from demo.hallucinet_demo import STUDENTS, parse_args
from tests.docs.docs_commands import REPO, all_blocks, documented_commands


def test_models_come_after_the_appearance_stream_they_start_from():
    assert parse_args(['--models', 'monet', 'vanilla']).models == [
        'monet-appearance', 'monet', 'vanilla'
    ]
    assert parse_args(['--models', 'monet', 'monet-appearance']).models == [
        'monet-appearance', 'monet'
    ]
    # The default rows: the baseline, and HalluciNet that also
    # hallucinates on the teacher's videos without their labels.
    assert parse_args([]).models == ['vanilla', 'hallucinet-unlabelled']


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    """The demo as the README and Get started write it, at quick scale,
    with the MoNet rows that the MoNet guide adds."""
    for page in ('README.md', 'docs/get_started.md'):
        assert documented_commands(page, 'demo') == [[]], page
    monet = documented_commands('docs/user_guides/monet.md', 'demo')
    assert monet == [['--models', 'monet']], monet
    tmp_path = tmp_path_factory.mktemp('quick_demo')
    work_dir, data_root = tmp_path / 'work', tmp_path / 'data'
    # monet brings in monet-appearance, whose checkpoint it starts from.
    proc = run_tool('-m', 'demo', '--quick', '--seeds', '2',
                    '--models', 'vanilla', 'hallucinet-unlabelled', 'monet',
                    '--work-dir', str(work_dir), '--data-root',
                    str(data_root), timeout=900)
    return proc, work_dir, data_root


@pytest.mark.slow
def test_quick_demo_end_to_end(quick_demo):
    proc, work_dir, data_root = quick_demo
    assert '| model | top-1 (%)' in proc.stdout
    # Every stage left its product behind.
    assert (data_root / 'meta.json').is_file()
    assert (work_dir / 'teacher' / 'teacher.pth').is_file()
    assert (work_dir / 'teacher_bank.lmdb').is_dir()
    # The runs went side by side (--jobs 2), each logging to a file.
    assert 'students: 8 runs, 2 at a time' in proc.stdout
    for name in ('vanilla', 'hallucinet-unlabelled', 'monet-appearance',
                 'monet'):
        run = work_dir / name / 'seed1'
        assert (run / 'epoch_1.pth').is_file(), name
        assert (run / 'test_predictions.pkl').is_file(), name
        # mmengine's work_dir layout: last_checkpoint, the dumped config,
        # the JSON scalars.
        assert (run / 'last_checkpoint').is_file(), name
        assert glob.glob(str(run / '*' / 'vis_data' / 'scalars.json')), name
        dumped = run / osp.basename(STUDENTS[name][0])
        assert dumped.is_file(), name
        assert 'Epoch(train)' in (run / 'console.log').read_text(), name
    for result in ('results.md', 'results.json', 'training_curves.png'):
        path = work_dir / result
        assert path.is_file() and path.stat().st_size > 0, result
    results = json.loads((work_dir / 'results.json').read_text())
    assert list(results['models']) == [
        'vanilla', 'hallucinet-unlabelled', 'monet-appearance', 'monet',
        'monet (appearance stream)',
        'monet (hallucinated stream)'
    ]
    for entry in results['models'].values():
        assert 0 <= entry['top1']['mean'] <= 100
        assert len(entry['top1']['values']) == 2
    # Each row against its baseline, with a 95% interval over the seeds.
    models = results['models']
    assert 'top1_diff' not in models['vanilla']
    for name, base in (('hallucinet-unlabelled', 'vanilla'),
                       ('monet', 'monet-appearance')):
        diff = models[name]['top1_diff']
        assert models[name]['baseline'] == base
        assert diff['diff'] == pytest.approx(
            models[name]['top1']['mean'] - models[base]['top1']['mean'])
        assert diff['low'] <= diff['diff'] <= diff['high']
    assert 'difference (95% CI)' in proc.stdout
    # The INT8 stage: the HalluciNet row's checkpoints quantised, beside
    # its float top-1 (the ONNX float top-1 is the test loop's).
    int8 = models['hallucinet-unlabelled']['int8']
    assert len(int8['seeds']) == 2 and 'int8' not in models['vanilla']
    for seed, report in enumerate(int8['seeds']):
        assert report['top1_float'] == pytest.approx(
            models['hallucinet-unlabelled']['top1']['values'][seed])
        assert report['hallu_cosine_min'] > 0.9
    assert (work_dir / 'hallucinet-unlabelled' / 'seed0' /
            'student.int8.onnx').is_file()
    assert 'INT8 top-1 (%), agreement' in proc.stdout
    # The demo's student design priced against the paper's teacher (random
    # weights), beside the demo's own tiny teacher.
    reference = results['cost']['reference']
    assert reference['teacher']['input'] == '1x3x16x112x112'
    assert reference['student']['input'] == '3x227x227'
    assert reference['teacher']['gflops'] > 5 * reference['student']['gflops']
    assert 0 < reference['paired_latency'] < 1
    assert "reference, cost only: paper's 3D-ResNeXt-101 teacher" \
        in proc.stdout
    assert '--preset demo-reference' in proc.stdout
    # The unlabelled row: the teacher's videos in every batch, from the
    # bank (tools/train.py --teacher-bank), read without their labels; the
    # classification loss on the labelled videos only. The training run's
    # config, as its visualizer saved it (tools/test.py later dumps its own
    # config into the work_dir).
    log = (work_dir / 'hallucinet-unlabelled' / 'seed0' /
           'console.log').read_text()
    assert '--unlabelled-ignore-labels' in log and 'hallu_unlabelled' in log
    assert 'loss_hallu' in log
    saved = [
        open(path).read() for path in glob.glob(
            str(work_dir / 'hallucinet-unlabelled' / 'seed0' / '*' /
                'vis_data' / 'config.py')) if 'MixedSourceSampler' in
        open(path).read()
    ]
    assert len(saved) == 1, 'one training run'
    text = saved[0]
    assert 'teacher_train_list.txt' in text and 'ignore_labels=True' in text
    assert 'LoadTeacherFeatures' in text
    assert results['dataset']['unlabelled_videos'] == 32
    # MoNet learned on the baseline's trained appearance stream, kept
    # frozen: its appearance stream alone predicts what the baseline does.
    appearance = work_dir / 'monet-appearance' / 'seed0' / 'epoch_1.pth'
    log = (work_dir / 'monet' / 'seed0' / 'console.log').read_text()
    assert f'loaded the appearance stream (backbone, cls_head) from ' \
        f'{appearance}' in log
    models = results['models']
    assert models['monet (appearance stream)']['top1'] == \
        models['monet-appearance']['top1']
    assert 'final_loss_hallu' in models['hallucinet-unlabelled']
    assert results['dataset']['labelled_train_videos'] == 16
    assert results['cost']['teacher']['gflops'] > 0
    assert osp.getsize(work_dir / 'training_curves.png') > 10_000


@pytest.mark.slow
def test_documented_commands_run_on_the_quick_demo(quick_demo, tmp_path):
    """Every "% docs-test: run" block of the docs, verbatim, in a checkout
    whose data/demo and work_dirs/demo are the quick demo's."""
    _, work_dir, data_root = quick_demo
    for name in ('configs', 'tools', 'demo'):
        os.symlink(osp.join(REPO, name), tmp_path / name)
    for link, target in (('data', data_root), ('work_dirs', work_dir)):
        (tmp_path / link).mkdir()
        os.symlink(target, tmp_path / link / 'demo')
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    blocks = [block for block in all_blocks() if block.marker == 'run']
    assert {block.page for block in blocks} >= {
        'docs/get_started.md', 'docs/user_guides/deployment.md'
    }
    for block in blocks:
        proc = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c',
                               block.text],
                              cwd=tmp_path,
                              env=env,
                              capture_output=True,
                              text=True,
                              timeout=600)
        assert proc.returncode == 0, (f'{block.where()} failed:\n'
                                      f'{block.text}\n{proc.stdout[-3000:]}'
                                      f'\n{proc.stderr[-5000:]}')
    # What the blocks say they make.
    assert (work_dir / 'student.onnx').is_file()
    assert (work_dir / 'hallu.npy').is_file()
