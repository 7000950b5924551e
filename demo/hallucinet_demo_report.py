"""The main demo's results (:mod:`demo.hallucinet_demo`): each run's
curves, the summary over seeds (mean, spread, Welch's interval of the
difference to the baseline row), the Markdown table with the cost columns,
JSON and the training curves."""
from typing import Dict, List, Optional

from demo.driver import (
    compare_seeds,
    figure,
    mean_std,
    read_scalars,
    signed,
)
from demo.driver import write_results as write_outputs
from hallucinet_plugin.utils.report import markdown_table as _table

# Students that also hallucinate on the teacher_train videos, read without
# their labels (--unlabelled-ratio of them per labelled video in a batch).
UNLABELLED = ('hallucinet-unlabelled', )
# A student that starts from another's trained appearance stream, seed by
# seed (model.appearance_ckpt): MoNet learns its hallucination on the fixed
# appearance stream of the appearance-only baseline, as in the paper; it is
# compared with that baseline, the others with the vanilla student.
APPEARANCE_FROM = {'monet': 'monet-appearance'}
# The benchmark preset that prices the demo's student where the paper runs.
REFERENCE_PRESET = 'demo-reference'


def read_curves(work_dir: str) -> Dict[str, List]:
    """Training curves from mmengine's ``vis_data/scalars.json`` files."""
    curves = dict(step=[], loss_cls=[], loss_hallu=[], val_epoch=[],
                  val_top1=[])
    for row in read_scalars(work_dir):
        if 'loss_cls' in row:
            curves['step'].append(row['step'])
            curves['loss_cls'].append(row['loss_cls'])
            curves['loss_hallu'].append(row.get('loss_hallu'))
        elif 'acc/top1' in row and 'epoch' not in row:
            curves['val_epoch'].append(row['step'])
            curves['val_top1'].append(100 * row['acc/top1'])
    return curves


def baseline_of(name: str, names: List[str]) -> Optional[str]:
    """The row a model is compared with: MoNet rows with the appearance
    stream they start from, the others with the vanilla student."""
    model = name.split(' ')[0]
    base = APPEARANCE_FROM.get(model, 'vanilla')
    return base if base in names and base != name else None


def summarize(runs: Dict, teacher_top1: float, dataset: Dict, cost: Dict,
              timings: Dict, elapsed: float, command: str,
              int8: Optional[Dict] = None) -> Dict:
    models = {}
    for name, seeds in runs.items():
        base = baseline_of(name, list(runs))
        row = compare_seeds([r['top1'] for r in seeds],
                            None if base is None else
                            [r['top1'] for r in runs[base]])
        entry = dict(top1=row['stats'])
        if name in (int8 or {}):
            entry['int8'] = int8[name]
        if base is not None:
            entry['baseline'] = base
            entry['top1_diff'] = row['diff']
        final = [
            r['curves']['loss_hallu'][-1] for r in seeds
            if r['curves']['loss_hallu'] and
            r['curves']['loss_hallu'][-1] is not None
        ]
        if final:
            entry['final_loss_hallu'] = compare_seeds(final)['stats']
        models[name] = entry
    splits = dataset.get('splits', {})
    unlabelled = any(name in UNLABELLED for name in runs)
    return dict(
        command=command,
        teacher_top1=teacher_top1,
        models=models,
        dataset=dict(
            labelled_train_videos=splits['train']['num_videos'],
            teacher_train_videos=splits['teacher_train']['num_videos'],
            unlabelled_videos=splits['teacher_train']['num_videos']
            if unlabelled else 0,
            val_videos=splits['val']['num_videos'],
            single_frame_upper_bound=dataset.get('single_frame_upper_bound')),
        cost=cost,
        timings_s=timings,
        elapsed_s=elapsed)


def markdown_table(results: Dict) -> str:
    data = results['dataset']
    models = results['models']
    num_seeds = len(next(iter(models.values()))['top1']['values'])
    unlabelled = [m for m in models if m in UNLABELLED]
    extra = ''
    if unlabelled:
        extra = (f" ({', '.join(unlabelled)}: also "
                 f"{data['unlabelled_videos']} unlabelled videos, the "
                 "teacher's, their labels never read)")
    caption = (
        f"Demo: students trained on {data['labelled_train_videos']} "
        f'labelled videos{extra}, teacher on '
        f"{data['teacher_train_videos']}, evaluated on "
        f"{data['val_videos']} (top-1 %, mean +- std over {num_seeds} "
        "seeds; difference to the baseline with Welch's 95% confidence "
        'interval over seeds).')
    header = [
        'model', 'top-1 (%)', 'seeds', 'difference (95% CI)',
        'final loss_hallu', 'GFLOPs/clip', 'params (M)',
        'CPU latency (ms, batch 1)'
    ]
    # INT8 (the same checkpoints quantised) beside the float top-1.
    with_int8 = any('int8' in m for m in models.values())
    if with_int8:
        header.insert(3, 'INT8 top-1 (%), agreement')
    cost = results['cost']
    teacher = cost.get('teacher', {})
    rows = [[
        '3D teacher (16 frames)', f"{results['teacher_top1']:.1f}", '1', '-',
        '-', f"{teacher.get('gflops', 0):.3f}",
        f"{teacher.get('params_m', 0):.2f}",
        f"{teacher.get('median_ms', 0):.2f}"
    ]]
    notes = []
    for name, entry in models.items():
        top1 = entry['top1']
        seeds = ', '.join(f'{v:.1f}' for v in top1['values'])
        diff = entry.get('top1_diff')
        shown = '-'
        if diff is not None:
            shown = f"{signed(diff['diff'])} vs {entry['baseline']}"
            if diff['low'] is not None:
                shown += f" [{signed(diff['low'])}, {signed(diff['high'])}]"
                if not diff['excludes_zero']:
                    notes.append(
                        f"- {name}: the interval includes 0, so these "
                        f"{num_seeds} seeds do not show a difference to "
                        f"{entry['baseline']}.")
        hallu = entry.get('final_loss_hallu')
        hallu = f"{hallu['mean']:.4f}" if hallu else '-'
        c = cost.get(name, {})
        row = [
            name, mean_std(top1), seeds, shown,
            hallu, f"{c.get('gflops', 0):.3f}", f"{c.get('params_m', 0):.2f}",
            f"{c.get('median_ms', 0):.2f}"
        ]
        if with_int8:
            q = entry.get('int8')
            row.insert(3, '-' if q is None else (
                f"{q['top1_int8']['mean']:.1f} +- "
                f"{q['top1_int8']['std']:.1f}, "
                f"{q['agreement']['mean']:.0f}%"))
        rows.append(row)
    reference = cost.get('reference')
    if reference:
        rows += reference_rows(reference)
        notes.append(reference_note(reference, teacher, cost))
    for row in rows:  # the teacher's and the cost-only rows
        if len(row) < len(header):
            row.insert(3, '-')
    lines = [caption, '', _table(header, rows), ''] + notes + (
        [''] if notes else []) + [
            f"Command: `{results['command']}` "
            f"({results['elapsed_s'] / 60:.1f} min)."
        ]
    return '\n'.join(lines)


def reference_rows(reference: Dict) -> List[List[str]]:
    """The cost-only rows: the paper's teacher and the demo's student design
    at the paper's sizes (:func:`measure_demo_cost`)."""
    rows = []
    for role, label in (('teacher', "paper's 3D-ResNeXt-101 teacher"),
                        ('student', "the demo's HalluciNet resnet10t")):
        c = reference[role]
        rows.append([
            f"reference, cost only: {label} ({c['input']})", '-', '-', '-',
            '-', f"{c['gflops']:.3f}", f"{c['params_m']:.2f}",
            f"{c['median_ms']:.2f}"
        ])
    return rows


def reference_note(reference: Dict, teacher: Dict, cost: Dict) -> str:
    student, big = reference['student'], reference['teacher']
    demo = next((c for n, c in cost.items()
                 if n not in ('teacher', 'reference')), {})
    return (
        "- Cost: the demo's teacher is sized to train in 2 minutes "
        f"({teacher.get('gflops', 0):.3f} GFLOPs against its student's "
        f"{demo.get('gflops', 0):.3f}), so the demo pair does not show the "
        "saving. The reference rows (random weights, measured in this run) "
        "price the same student design where the paper runs it: at "
        f"{student['input']} it costs "
        f"{100 * student['gflops'] / big['gflops']:.1f}% of the paper's "
        f"teacher's GFLOPs and {100 * reference['paired_latency']:.1f}% of "
        'its CPU batch-1 latency (interleaved, paired timing). '
        f'`python tools/benchmark.py --preset {REFERENCE_PRESET}` gives the '
        'full table (throughput, memory, onnxruntime).')


def plot_curves(runs: Dict, path: str) -> None:
    """Fig. 5-style curves: loss_cls, loss_hallu, validation top-1."""
    with figure(path, 3, figsize=(15, 4)) as (_, axes):
        for name, seeds in runs.items():
            for i, run in enumerate(seeds):
                c = run['curves']
                label = name if i == 0 else None
                color = f'C{list(runs).index(name)}'
                axes[0].plot(c['step'], c['loss_cls'], '.-', color=color,
                             alpha=0.6, label=label)
                if any(v is not None for v in c['loss_hallu']):
                    axes[1].plot(c['step'], c['loss_hallu'], '.-',
                                 color=color, alpha=0.6, label=label)
                axes[2].plot(c['val_epoch'], c['val_top1'], 'o-',
                             color=color, alpha=0.6, label=label)
        for ax, title, xlabel in zip(
                axes, ('loss_cls', 'loss_hallu', 'validation top-1 (%)'),
                ('iteration', 'iteration', 'epoch')):
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            ax.legend()


def write_results(results: Dict, runs: Dict, work_dir: str) -> None:
    """The table (printed too), the results with every run's curves, and
    the curves' plot (``training_curves.png``)."""
    table = markdown_table(results)
    print('\n' + table + '\n')
    curves = {n: [r['curves'] for r in s] for n, s in runs.items()}
    write_outputs(work_dir, table, dict(results, curves=curves),
                  lambda path: plot_curves(runs, path),
                  'training_curves.png')
    print(f'wrote {work_dir}/results.md, results.json, training_curves.png')
