"""The results of MoNet's feature-level demo
(:mod:`demo.monet_feature_demo`): the shapes of its Tables 1 and 3 over
seeds, as Markdown and a plot."""
import argparse
from typing import Dict

from demo.driver import (
    bars_with_seeds,
    compare_seeds,
    diff_cell,
    figure,
    mean_std,
)
from demo.driver import write_results as write_outputs
from hallucinet_plugin.utils.report import markdown_table

UNITS = ('mlp', 'gru', 'bigru', 'conv1d', 'monet')
CLASSIFIERS = ('linear', 'trn', 'netvlad', 'nextvlad')
UNIT_NAMES = dict(
    mlp='MLP', gru='GRU', bigru='biGRU', conv1d='conv1d', monet='MoNet')
CLASSIFIER_NAMES = dict(
    linear='linear', trn='TRN', netvlad='NetVLAD', nextvlad='NeXtVLAD')


def _stats(runs: Dict[int, Dict], key: str = 'top1') -> Dict:
    return compare_seeds([runs[s][key] for s in sorted(runs)])['stats']


def _diff(runs: Dict, reference: Dict) -> Dict:
    return compare_seeds([runs[s]['top1'] for s in sorted(runs)],
                         [reference[s]['top1']
                          for s in sorted(reference)])['diff']


def summarize(results: Dict, args: argparse.Namespace) -> Dict:
    """Table 1 (sequence models) and Table 3 (classifiers) with statistics
    over seeds."""
    table1 = []
    base = results['appearance_linear']
    table1.append(dict(row='appearance only', stats=_stats(base)))
    for unit in args.units:
        name = f'{unit}_linear'
        stage1 = results[f'{name}-stage1']
        table1.append(
            dict(
                row=f'{UNIT_NAMES[unit]} (hallucinated motion)',
                r2=_stats(stage1, 'hallu_r2'),
                stage1=_stats(stage1),
                stats=_stats(results[name]),
                diff=_diff(results[name], base)))
    if args.unlabelled:
        name = 'monet_linear-unlabelled'
        stage1 = results[f'{name}-stage1']
        table1.append(
            dict(
                row='MoNet, stage 1 also on the unlabelled videos',
                r2=_stats(stage1, 'hallu_r2'),
                stage1=_stats(stage1),
                stats=_stats(results[name]),
                diff=_diff(results[name], base)))
    table1.append(
        dict(
            row='real motion (two-stream)',
            stats=_stats(results['two-stream_linear']),
            diff=_diff(results['two-stream_linear'], base)))
    table3 = []
    for classifier in args.classifiers:
        app = results[f'appearance_{classifier}']
        hallu = results[f'monet_{classifier}']
        real = results[f'two-stream_{classifier}']
        table3.append(
            dict(
                row=CLASSIFIER_NAMES[classifier],
                appearance=_stats(app),
                hallucinated=_stats(hallu),
                real=_stats(real),
                diff_hallucinated=_diff(hallu, app),
                diff_real=_diff(real, app)))
    return dict(table1=table1, table3=table3)


def markdown(summary: Dict, seeds: int) -> str:
    """Both tables as Markdown."""
    rows1 = [[
        r['row'],
        mean_std(r.get('r2'), 3),
        mean_std(r.get('stage1')),
        mean_std(r['stats']),
        diff_cell(r.get('diff'))
    ] for r in summary['table1']]
    rows3 = [[
        r['row'],
        mean_std(r['appearance']),
        mean_std(r['hallucinated']),
        diff_cell(r['diff_hallucinated']),
        mean_std(r['real']),
        diff_cell(r['diff_real'])
    ] for r in summary['table3']]
    return '\n'.join([
        f'Top-1 accuracy (%) on the val videos, mean +- std over {seeds} '
        "seeds; differences to the appearance stream with Welch's 95% "
        'interval.', '',
        '**Table 1 shape: the sequence model that hallucinates the motion '
        'stream** (linear classifier; stage 1 = classifiers frozen from '
        'the real two-stream model, stage 2 = motion classifier '
        'fine-tuned on the hallucination; R2: the share of the real motion '
        "features' variance around their training mean that the stage-1 "
        'hallucination explains)', '',
        markdown_table([
            'model', 'R2 of the hallucination (val)', 'stage 1 top-1',
            'top-1', 'vs appearance'
        ], rows1), '',
        '**Table 3 shape: the classifier** (hallucination by MoNet, after '
        'stage 2)', '',
        markdown_table([
            'classifier', 'appearance', 'hallucinated two-stream',
            'hallucinated vs appearance', 'real two-stream',
            'real vs appearance'
        ], rows3)
    ])


def plot(summary: Dict, path: str, chance: float) -> None:
    """Both tables as bars, each seed a dot, chance dotted."""
    with figure(path, 2, figsize=(12, 4)) as (_, axes):
        ax = axes[0]
        rows = [(r['row'].split(' (')[0], r['stats'])
                for r in summary['table1']]
        bars_with_seeds(ax, range(len(rows)), [s for _, s in rows],
                        color='tab:blue', alpha=0.6)
        ax.set_xticks(range(len(rows)), [n for n, _ in rows], rotation=20)
        ax.set_ylabel('top-1 (%)')
        ax.set_title('Table 1: sequence model (linear classifier)')
        for axis in axes:
            axis.axhline(chance, color='k', ls=':', lw=1)
        ax = axes[1]
        kinds = (('appearance', 'tab:gray'), ('hallucinated', 'tab:orange'),
                 ('real', 'tab:green'))
        width = 0.8 / len(kinds)
        for k, (kind, color) in enumerate(kinds):
            bars_with_seeds(
                ax, [i + (k - 1) * width
                     for i in range(len(summary['table3']))],
                [row[kind] for row in summary['table3']], width,
                color=color, label=kind, alpha=0.7)
        ax.set_xticks(range(len(summary['table3'])),
                      [r['row'] for r in summary['table3']])
        ax.set_title('Table 3: classifier')
        ax.legend(loc='center left', fontsize='small')


def write_results(report: Dict, work_dir: str) -> None:
    """``results.md``, ``results.json`` and ``results.png``."""
    write_outputs(work_dir, report['markdown'], report,
                  lambda path: plot(report['summary'], path,
                                    report['chance']), 'results.png',
                  indent=2)
