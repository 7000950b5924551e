"""MoNet's feature-level demo: tables from runs, and the quick command end
to end through the same code (feature stores from the bank's extraction,
MoNet's two stages, tools/test.py agreeing with the reported numbers)."""
import json
import os.path as osp

import pytest
import torch
from conftest import run_tool

from demo.monet_feature_demo import config_path, parse_args
from demo.monet_feature_demo_report import markdown, summarize
from hallucinet_plugin.feature_bank import FeatureBank
from tests.docs.docs_commands import documented_commands


def fake_results(args, offsets):
    """``{row: {seed: result}}`` with top-1 = 20 + offset + seed."""
    rows = [f'appearance_{c}' for c in args.classifiers]
    rows += [f'two-stream_{c}' for c in args.classifiers]
    rows += [f'{u}_linear' for u in args.units]
    rows += [f'{u}_linear-stage1' for u in args.units]
    rows += [f'monet_{c}' for c in args.classifiers]
    return {
        row: {
            seed: dict(top1=20.0 + offsets.get(row, 0) + seed,
                       hallu_r2=0.1 * seed)
            for seed in range(args.seeds)
        }
        for row in rows
    }


def test_tables_compare_each_row_with_the_appearance_stream():
    args = parse_args(['--seeds', '3', '--units', 'gru', '--classifiers',
                       'netvlad'])
    # Table 1 needs the linear classifier, Table 3 MoNet.
    assert args.classifiers == ['linear', 'netvlad']
    assert args.units == ['gru', 'monet']
    results = fake_results(args, {'two-stream_linear': 10.0,
                                  'monet_netvlad': -2.0})
    summary = summarize(results, args)
    rows = [r['row'] for r in summary['table1']]
    assert rows == ['appearance only', 'GRU (hallucinated motion)',
                    'MoNet (hallucinated motion)',
                    'real motion (two-stream)']
    real = summary['table1'][-1]
    assert real['stats']['mean'] == 31.0
    # Shifted by 10 at every seed, equal spreads: +10, Welch's interval
    # around it excludes 0.
    assert real['diff']['diff'] == pytest.approx(10.0)
    assert real['diff']['excludes_zero']
    netvlad = summary['table3'][1]
    assert netvlad['row'] == 'NetVLAD'
    assert netvlad['diff_hallucinated']['diff'] == pytest.approx(-2.0)
    gru = summary['table1'][1]
    assert gru['r2']['mean'] == pytest.approx(0.1)
    text = markdown(summary, args.seeds)
    assert '| GRU (hallucinated motion) | 0.100 +- 0.100 | 21.0 +- 1.0 |' \
        in text
    assert '| real motion (two-stream) | - | - | 31.0 +- 1.0 | +10.0' in text
    assert '| NetVLAD | 21.0 +- 1.0 | 19.0 +- 1.0 | -2.0' in text
    with pytest.raises(SystemExit):
        parse_args(['--seeds', '1'])


def test_every_row_has_its_config():
    for kind in ('appearance', 'two-stream', 'monet', 'monet-ft'):
        for classifier in ('linear', 'trn', 'netvlad', 'nextvlad'):
            assert osp.isfile(config_path(kind, classifier))


@pytest.mark.slow
def test_quick_feature_demo_end_to_end(tmp_path):
    # The MoNet guide's commands at quick scale: its subset, with the
    # --unlabelled row (the plain run is the same with more rows).
    subset = ['--units', 'monet', 'gru', '--classifiers', 'linear',
              'nextvlad']
    assert documented_commands('docs/user_guides/monet.md',
                               'demo monet-features') == [
                                   [], [], ['--unlabelled'], subset]
    work, demo, data = (tmp_path / n for n in ('work', 'demo', 'data'))
    proc = run_tool('-m', 'demo', 'monet-features', '--quick', '--seeds',
                    '2', *subset, '--unlabelled', '--work-dir', str(work),
                    '--demo-work-dir', str(demo), '--data-root', str(data),
                    timeout=900)
    assert '**Table 1 shape' in proc.stdout
    assert 'MoNet, stage 1 also on the unlabelled videos' in proc.stdout
    assert '| NeXtVLAD |' in proc.stdout
    for name in ('results.md', 'results.json', 'results.png'):
        assert (work / name).stat().st_size > 0, name
    report = json.loads((work / 'results.json').read_text())
    assert set(report['runs']['monet_nextvlad']) == {'0', '1'}
    # The stores hold every train, val and unlabelled video, with the
    # demo's clips: 16-frame teacher windows every 4 frames, 1-frame
    # student windows.
    assert report['videos']['unlabelled'] > 0
    videos = sum(report['videos'][split]
                 for split in ('train', 'val', 'unlabelled'))
    motion = FeatureBank(str(work / 'motion.lmdb'))
    appearance = FeatureBank(str(work / 'appearance.lmdb'))
    assert len(motion) == len(appearance) == videos
    assert (motion.meta['clip_len'], motion.meta['stride']) == (16, 4)
    assert (appearance.meta['clip_len'], appearance.meta['stride']) == (1, 1)
    # Stage 2 kept what was frozen: the appearance classifier from the
    # real two-stream model, MoNet from stage 1.
    def state(row):
        path = report['runs'][row]['1']['checkpoint']
        return torch.load(path, weights_only=True)['state_dict']
    two_stream, stage1, stage2 = (state(r) for r in (
        'two-stream_linear', 'monet_linear-stage1', 'monet_linear'))
    for key, value in two_stream.items():
        if key.startswith('appearance_head.'):
            assert torch.equal(stage2[key], value), key
    for key, value in stage1.items():
        if key.startswith('hallu_head.') and 'loss_hallu' not in key:
            assert torch.equal(stage2[key], value), key
    assert any(not torch.equal(stage2[k], stage1[k]) for k in stage1
               if k.startswith('motion_head.'))
    # tools/test.py on a stage-2 checkpoint reports the demo's number (a
    # test builds the model without init_weights: stream_ckpts unread).
    ckpt = report['runs']['monet_nextvlad']['0']['checkpoint']
    root = str(work)
    test = run_tool(
        'tools/test.py', config_path('monet-ft', 'nextvlad'), ckpt,
        '--work-dir', str(tmp_path / 'test'), '--cfg-options',
        f'test_dataloader.dataset.ann_file={root}/val_list.txt',
        f'test_dataloader.dataset.streams.appearance.store='
        f'{root}/appearance.lmdb',
        f'test_dataloader.dataset.streams.motion.store={root}/motion.lmdb')
    top1 = report['runs']['monet_nextvlad']['0']['top1']
    assert f'acc/top1: {top1 / 100:.4f}' in test.stdout + test.stderr
