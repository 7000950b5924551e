"""The diving demo's results (:mod:`demo.dive_demo`): the metrics of each
run, their summary over seeds (mean, spread, Welch's interval of the
difference to the baseline row), the Markdown tables, JSON and the plot.
"""
import pickle
from typing import Dict, List

from demo.driver import (
    bars_with_seeds,
    class_predictions,
    compare_seeds,
    diff_cell,
    figure,
    mean_std,
    read_scalars,
    top1_from_dump,
)
from demo.driver import write_results as write_outputs
from hallucinet_plugin.utils.report import markdown_table as _table

# The rows every other row is compared with, and those that also learn
# from unlabelled dives.
BASELINE = 'vanilla'
UNLABELLED = ('hallucinet-unlabelled', )


def grid_row(pre: str, fine: str) -> str:
    """Table 9's row: pre-training ``pre``, fine-tuning ``fine``."""
    return f'{pre}-pt_{fine}'


def dive_metrics(path: str) -> Dict[str, float]:
    """Per-property accuracy (%) and Spearman's rho (%) from a
    ``tools/test.py --dump`` pickle, by the plugin's own metrics."""
    from hallucinet_plugin.evaluation.metrics import (
        DivePropertyAccuracy,
        SpearmanCorrelation,
    )
    with open(path, 'rb') as f:
        preds = pickle.load(f)
    if not preds:
        raise ValueError(f'{path}: no predictions')
    metrics = dict()
    for key, metric in (('pred_dive_scores', DivePropertyAccuracy()),
                        ('pred_quality', SpearmanCorrelation())):
        if key in preds[0]:
            metric.process(None, preds)
            # Named as the evaluator names them: acc/<property>,
            # aqa/spearman.
            metrics.update({
                f'{metric.prefix}/{name}': value
                for name, value in metric.compute_metrics(
                    metric.results).items()
            })
    return metrics


def final_validation(work_dir: str) -> Dict[str, float]:
    """The dive metrics of the last validation that mmengine logged
    (``vis_data/scalars.json``): per-property accuracy and Spearman, %."""
    metrics = None
    for row in read_scalars(work_dir):
        if any(k.startswith(('acc/', 'aqa/')) for k in row):
            metrics = {
                k: v
                for k, v in row.items() if k.startswith(('acc/', 'aqa/'))
            }
    if metrics is None:
        raise ValueError(f'{work_dir}: no validation metrics logged')
    return metrics


def with_mean_accuracy(metrics: Dict[str, float]) -> Dict[str, float]:
    """``metrics`` plus ``acc/mean``, the mean accuracy over the
    properties (the paper's Table 3 reading)."""
    accs = [v for k, v in metrics.items() if k.startswith('acc/')]
    if not accs:
        raise ValueError('no per-property accuracy among the metrics '
                         f'{sorted(metrics)}')
    return dict(metrics, **{'acc/mean': sum(accs) / len(accs)})


def teacher_metrics(path: str) -> Dict:
    """The teacher's held-out top-1 (%) and, from its classes
    (``TEACHER_CLASSES``: sense x somersaults), the accuracy of each part
    alone."""
    from demo.dive_demo_data import TEACHER_CLASSES
    preds = class_predictions(path)
    rate_classes = len(TEACHER_CLASSES) // 2
    sense = rate = 0
    for scores, truth in preds:
        guess = int(scores.argmax())
        sense += int(guess // rate_classes == truth // rate_classes)
        rate += int(guess % rate_classes == truth % rate_classes)
    return dict(
        top1=top1_from_dump(path),
        sense=100.0 * sense / len(preds),
        somersaults=100.0 * rate / len(preds),
        clips=len(preds),
        chance=100.0 / len(TEACHER_CLASSES))


def summarize(runs: Dict, teacher: Dict, dataset: Dict, epochs: Dict,
              unlabelled_ratio: float, timings: Dict, elapsed: float,
              command: str) -> Dict:
    """Per model and metric: mean, spread and seeds; per model but the
    baseline, the difference to it with Welch's 95% interval."""
    models = summarize_models(runs, BASELINE)
    splits = dataset['splits']
    params = dataset['params']
    unlabelled = any(name in UNLABELLED for name in runs)
    return dict(
        command=command,
        teacher=teacher,
        models=models,
        dataset=dict(
            train_dives=splits['train']['num_dives'],
            test_dives=splits['test']['num_dives'],
            unlabelled_dives=splits['unlabelled']['num_dives']
            if unlabelled and 'unlabelled' in splits else 0,
            unlabelled_ratio=unlabelled_ratio,
            # Every sixth clip is held out (dive_demo_data).
            teacher_train_clips=params['num_teacher_clips'] -
            params['num_teacher_clips'] // 6,
            properties=dataset['properties']),
        epochs=epochs,
        timings_s=timings,
        elapsed_s=elapsed)


def summarize_models(runs: Dict, baseline: str) -> Dict:
    """Per model and metric: mean, spread and seeds; for every model but
    ``baseline``, the difference to it with Welch's 95% interval."""
    models = {}
    for name, seeds in runs.items():
        compared = name != baseline and baseline in runs
        rows = {
            key: compare_seeds(
                [run['metrics'][key] for run in seeds],
                [run['metrics'][key]
                 for run in runs[baseline]] if compared else None)
            for key in seeds[0]['metrics']
        }
        entry = dict(metrics={key: r['stats'] for key, r in rows.items()})
        if compared:
            entry['baseline'] = baseline
            entry['diff'] = {key: r['diff'] for key, r in rows.items()}
        hallu = [
            r['final_loss_hallu'] for r in seeds
            if r['final_loss_hallu'] is not None
        ]
        if hallu:
            entry['final_loss_hallu'] = compare_seeds(hallu)['stats']
        models[name] = entry
    return models


def metric_columns(results: Dict) -> List[tuple]:
    """(key, header) of the table's metric columns, in the paper's order:
    the properties, their mean, Spearman."""
    props = list(results['dataset']['properties'])
    return [(f'acc/{p}', p) for p in props] + [('acc/mean', 'mean'),
                                                 ('aqa/spearman', 'Spearman')]


def markdown_table(results: Dict) -> str:
    data = results['dataset']
    models = results['models']
    first = next(iter(models.values()))
    seeds = len(next(iter(first['metrics'].values()))['values'])
    teacher = results['teacher']
    columns = [c for c in metric_columns(results)
               if c[0] in first['metrics']]
    unlabelled = [m for m in models if m in UNLABELLED]
    extra = ''
    if unlabelled:
        extra = (f" ({', '.join(unlabelled)}: also "
                 f"{data['unlabelled_dives']} dives of other events, their "
                 f"labels never read, {data['unlabelled_ratio']:g} per "
                 'labelled dive in a batch)')
    caption = (
        f"Diving demo: students trained on {data['train_dives']} dives"
        f"{extra} for {results['epochs']['students']} epochs, tested on "
        f"{data['test_dives']} dives of other events. Teacher trained on "
        f"{data['teacher_train_clips']} motion clips for "
        f"{results['epochs']['teacher']} epochs: top-1 "
        f"{teacher['top1']:.1f}% on {teacher['clips']} held-out clips "
        f"(chance {teacher['chance']:.1f}%; sense of the somersaults "
        f"{teacher['sense']:.1f}%, their number {teacher['somersaults']:.1f}"
        f"%). Accuracy and Spearman in %, mean +- std over {seeds} seeds.")
    lines = [caption, ''] + model_tables(models, columns, BASELINE)
    table9 = results.get('table9')
    if table9:
        lines += table9_section(table9, columns)
    lines.append(f"Command: `{results['command']}` "
                 f"({results['elapsed_s'] / 60:.1f} min).")
    return '\n'.join(lines)


def model_tables(models: Dict, columns: List[tuple],
                 baseline: str) -> List[str]:
    """Lines of the table of rows (mean +- std) and of their differences
    to ``baseline`` with the intervals."""
    rows = []
    for name, entry in models.items():
        cells = [mean_std(entry['metrics'][key]) for key, _ in columns]
        hallu = entry.get('final_loss_hallu')
        cells.append(f"{hallu['mean']:.3f}" if hallu else '-')
        rows.append([name] + cells)
    lines = [
        _table(['model'] + [h for _, h in columns] + ['final loss_hallu'],
               rows), ''
    ]
    diff_rows = [[name] + [diff_cell(entry['diff'][key], star=True)
                           for key, _ in columns]
                 for name, entry in models.items() if 'diff' in entry]
    if diff_rows:
        lines += [
            f"Difference to {baseline} (points, Welch's 95% confidence "
            'interval over seeds; * where it excludes 0):', '',
            _table(['model'] + [h for _, h in columns], diff_rows), ''
        ]
    return lines


def table9_section(table9: Dict, columns: List[tuple]) -> List[str]:
    """The paper's Table 9 on generated data: the 2 x 2 grid of mean
    accuracy over the properties, then every row in full."""
    stage1 = table9['stage1']
    models = table9['models']
    parts = ', '.join(
        f"{kind} {run['top1']:.1f}%" for kind, run in stage1['runs'].items())
    lines = [
        "Hallucination in pre-training (the paper's Table 9): stage 1 "
        f"trained the dive student on the main demo's {stage1['train_videos']}"
        f" labelled videos for {stage1['epochs']} epochs, once per kind "
        f"(top-1 on its {stage1['val_videos']} validation videos: {parts}); "
        'stage 2 fine-tuned it on the dives as above, seeds varying stage '
        '2 only. Mean accuracy over the properties (%):', ''
    ]
    grid = []
    for pre in stage1['runs']:
        cells = []
        for fine in ('vanilla', 'hallucinet'):
            cells.append(
                mean_std(models[grid_row(pre, fine)]['metrics']['acc/mean']))
        grid.append([f'pre-training {pre}'] + cells)
    lines += [
        _table(['', 'fine-tuning vanilla', 'fine-tuning hallucinet'], grid),
        ''
    ]
    return lines + model_tables(models, columns, table9['baseline'])


def plot_results(results: Dict, path: str) -> None:
    """Bars per metric and model (mean, std as error bar) with each seed as
    a dot."""
    import numpy as np
    models = results['models']
    first = next(iter(models.values()))['metrics']
    columns = [c for c in metric_columns(results) if c[0] in first]
    width = 0.8 / len(models)
    with figure(path, figsize=(2 + 1.4 * len(columns), 4)) as (_, ax):
        x = np.arange(len(columns))
        for i, (name, entry) in enumerate(models.items()):
            stats = [entry['metrics'][key] for key, _ in columns]
            bars_with_seeds(ax, x - 0.4 + width * (i + 0.5), stats, width,
                            marker_size=3,
                            yerr=[s['std'] for s in stats], capsize=3,
                            label=name, color=f'C{i}', alpha=0.7)
        ax.set_xticks(x)
        ax.set_xticklabels([h for _, h in columns], rotation=20)
        ax.set_ylabel('%')
        ax.axhline(0, color='k', lw=0.5)
        ax.set_title(
            'diving demo: accuracy per property, their mean, Spearman')
        ax.grid(axis='y', alpha=0.3)
        ax.legend()


def write_results(results: Dict, work_dir: str) -> None:
    """The table (printed too), the results and their plot
    (``results.png``)."""
    table = markdown_table(results)
    print('\n' + table + '\n')
    write_outputs(work_dir, table, results,
                  lambda path: plot_results(results, path), 'results.png')
    print(f'wrote {work_dir}/results.md, results.json, results.png')
