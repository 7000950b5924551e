"""The long-term job on the generated diving demo (``tools/dive_demo.py``).

Generates the diving demo (:mod:`.dive_demo_dataset`: event videos in
MTL-AQA's released layout) if missing, trains the tiny 3D teacher on its
motion clips, then trains and tests the sparse-frame LSTM student without
(vanilla) and with hallucination on the dives, for several seeds, and prints
a table of per-property accuracy and Spearman's rank correlation of the
scores (also written as Markdown and JSON).

Like :mod:`.demo`, every stage runs the project's own ``tools/train.py`` and
``tools/test.py`` as subprocesses (:meth:`Demo.run`), so the demo exercises
exactly what a user runs; the metrics are the plugin's own
(:class:`DivePropertyAccuracy`, :class:`SpearmanCorrelation`) over the
predictions ``tools/test.py --dump`` writes.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import shutil
import sys
import time
from typing import Dict, List, Optional

from demo.hallucinet_demo import REPO, Demo, top1_from_dump
from hallucinet_plugin.utils import seed_summary
from hallucinet_plugin.utils.report import markdown_table as _table

CONFIG_DIR = osp.join(REPO, 'configs', 'mtl_aqa', 'demo')
TEACHER_CONFIG = osp.join(CONFIG_DIR,
                          'teacher_r3d-tiny_adam-6e_dive-demo-16x32.py')
STUDENTS = {
    'vanilla':
    'vanilla-lstm_convnext-test_1x16x6-adam-10e_dive-demo.py',
    'hallucinet':
    'hallucinet-lstm_convnext-test_r3d-tiny_1x16x6-adam-10e_dive-demo.py',
}

# Dataset sizes and epochs: the demo and the smoke run (--quick).
FULL = dict(
    num_train_events=12,
    num_test_events=6,
    dives_per_event=4,
    num_teacher_clips=240,
    size=32,
    teacher_epochs=6,
    student_epochs=10)
QUICK = dict(
    num_train_events=2,
    num_test_events=1,
    dives_per_event=2,
    num_teacher_clips=24,
    size=32,
    teacher_epochs=1,
    student_epochs=1)
_DATA_KEYS = ('num_train_events', 'num_test_events', 'dives_per_event',
              'num_teacher_clips', 'size')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='HalluciNet diving demo: teacher, sparse-frame LSTM '
        'students with and without hallucination, per-property accuracy '
        'and Spearman on generated MTL-AQA-layout data')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/dive_demo',
        help='where everything goes')
    parser.add_argument(
        '--data-root',
        default='data/dive_demo',
        help='dive demo dataset directory')
    parser.add_argument(
        '--seeds', type=int, default=2, help='seeds per student model')
    parser.add_argument(
        '--models',
        nargs='+',
        default=list(STUDENTS),
        choices=list(STUDENTS),
        help='student models to train')
    parser.add_argument(
        '--student-epochs',
        type=int,
        default=None,
        help='override the students\' epochs')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke run: tiny dataset, one epoch per stage')
    parser.add_argument(
        '--data-seed', type=int, default=0, help='seed of the dataset')
    # Demo's stages read these; the diving demo has no feature bank.
    parser.set_defaults(online_teacher=True, tensorboard=False)
    return parser.parse_args(argv)


class DiveDemo(Demo):
    """The stages of the diving demo; see the module docstring."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.sizes = dict(QUICK if args.quick else FULL)
        if args.student_epochs is not None:
            self.sizes['student_epochs'] = args.student_epochs

    def data_options(self) -> List[str]:
        root = self.data_root
        opts = [f'data_root={root}']
        for split, ann in (('train', 'train'), ('val', 'test'),
                           ('test', 'test')):
            prefix = f'{split}_dataloader.dataset'
            opts += [
                f'{prefix}.ann_file={root}/final_annotations_dict.pkl',
                f'{prefix}.split_file={root}/{ann}_split_0.pkl',
                f'{prefix}.data_prefix.video={root}/whole_videos'
            ]
        return opts

    def generate_data(self) -> Dict:
        from demo.dive_demo_data import generate_dive_demo_dataset
        start = time.time()
        meta = generate_dive_demo_dataset(
            self.data_root,
            seed=self.args.data_seed,
            **{k: self.sizes[k]
               for k in _DATA_KEYS})
        self.timings['dataset'] = time.time() - start
        return meta

    def train_teacher(self) -> str:
        ckpt = osp.join(self.teacher_dir, 'teacher.pth')
        if osp.isfile(ckpt):
            print(f'=== teacher: {ckpt} exists, reusing it')
            return ckpt
        epochs = self.sizes['teacher_epochs']
        root = self.data_root
        opts = [f'data_root={root}']
        for split, ann in (('train', 'train'), ('val', 'val')):
            opts += [
                f'{split}_dataloader.dataset.ann_file={root}/teacher_{ann}'
                '_list.txt',
                f'{split}_dataloader.dataset.data_prefix.video={root}/'
                'teacher_clips'
            ]
        opts += [
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.0.T_max={epochs}'
        ]
        self.run('teacher', 'tools/train.py', TEACHER_CONFIG, '--work-dir',
                 self.teacher_dir, '--cfg-options', *opts)
        with open(osp.join(self.teacher_dir, 'last_checkpoint')) as f:
            last = f.read().strip()
        shutil.copyfile(last, ckpt)
        return ckpt

    def test_teacher(self, ckpt: str) -> float:
        dump = osp.join(self.teacher_dir, 'test_predictions.pkl')
        root = self.data_root
        self.run('teacher test', 'tools/test.py', TEACHER_CONFIG, ckpt,
                 '--work-dir', self.teacher_dir, '--dump', dump,
                 '--cfg-options',
                 f'test_dataloader.dataset.ann_file={root}/teacher_val_'
                 'list.txt',
                 f'test_dataloader.dataset.data_prefix.video={root}/'
                 'teacher_clips')
        return top1_from_dump(dump)

    def student_config(self, name: str) -> str:
        return osp.join(CONFIG_DIR, STUDENTS[name])

    def train_student(self, name: str, seed: int, teacher_ckpt: str) -> Dict:
        work_dir = osp.join(self.work_dir, name, f'seed{seed}')
        epochs = self.sizes['student_epochs']
        config = self.student_config(name)
        opts = self.data_options() + [
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.0.T_max={epochs}',
        ]
        if name != 'vanilla':
            opts.append(f'model.teacher_ckpt={teacher_ckpt}')
        self.run(f'{name} seed {seed}', 'tools/train.py', config,
                 '--work-dir', work_dir, '--seed', str(seed), '--cfg-options',
                 *opts)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        dump = osp.join(work_dir, 'test_predictions.pkl')
        # Only the student runs at test time: no teacher.
        self.run(f'{name} seed {seed} test', 'tools/test.py', config, ckpt,
                 '--work-dir', work_dir, '--dump', dump, '--cfg-options',
                 *self.data_options(), 'model.teacher_ckpt=None')
        return dict(
            metrics=dive_metrics(dump),
            final_loss_hallu=last_scalar(work_dir, 'loss_hallu'),
            checkpoint=ckpt)

    def main(self) -> Dict:
        start = time.time()
        meta = self.generate_data()
        teacher_ckpt = self.train_teacher()
        teacher_top1 = self.test_teacher(teacher_ckpt)
        runs = {
            name: [
                self.train_student(name, seed, teacher_ckpt)
                for seed in range(self.args.seeds)
            ]
            for name in self.args.models
        }
        results = summarize(
            runs,
            teacher_top1=teacher_top1,
            dataset=meta,
            epochs=dict(
                teacher=self.sizes['teacher_epochs'],
                students=self.sizes['student_epochs']),
            timings=self.timings,
            elapsed=time.time() - start,
            command=' '.join(['python', 'tools/dive_demo.py'] +
                             sys.argv[1:]))
        write_results(results, self.work_dir)
        return results


# ----------------------------------------------------------------- results
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


def last_scalar(work_dir: str, key: str) -> Optional[float]:
    """The last logged training value of ``key`` (mmengine's
    ``vis_data/scalars.json``), or None."""
    value = None
    for name in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, name, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if key in row:
                    value = row[key]
    return value


def summarize(runs: Dict, teacher_top1: float, dataset: Dict, epochs: Dict,
              timings: Dict, elapsed: float, command: str) -> Dict:
    models = {}
    for name, seeds in runs.items():
        keys = list(seeds[0]['metrics'])
        models[name] = {
            key: seed_summary([run['metrics'][key] for run in seeds])
            for key in keys
        }
        hallu = [
            r['final_loss_hallu'] for r in seeds
            if r['final_loss_hallu'] is not None
        ]
        if hallu:
            models[name]['final_loss_hallu'] = seed_summary(hallu)
    splits = dataset['splits']
    return dict(
        command=command,
        teacher_top1=teacher_top1,
        models=models,
        dataset=dict(
            train_dives=splits['train']['num_dives'],
            test_dives=splits['test']['num_dives'],
            # Every sixth clip is held out (dive_demo_dataset).
            teacher_train_clips=dataset['params']['num_teacher_clips'] -
            dataset['params']['num_teacher_clips'] // 6,
            properties=dataset['properties']),
        epochs=epochs,
        timings_s=timings,
        elapsed_s=elapsed)


def markdown_table(results: Dict) -> str:
    data = results['dataset']
    props = list(data['properties'])
    first = next(iter(results['models'].values()))
    seeds = len(next(iter(first.values()))['values'])
    caption = (
        f"Diving demo: students trained on {data['train_dives']} dives "
        f"({results['epochs']['students']} epochs), tested on "
        f"{data['test_dives']}; teacher trained on "
        f"{data['teacher_train_clips']} motion clips, top-1 "
        f"{results['teacher_top1']:.1f}% on held-out ones. Accuracy and "
        f"Spearman in %, mean +- std over {seeds} seed(s).")
    rows = []
    for name, entry in results['models'].items():
        cells = [
            _cell(entry.get(f'acc/{p}')) for p in props
        ] + [_cell(entry.get('aqa/spearman'))]
        hallu = entry.get('final_loss_hallu')
        cells.append(f"{hallu['mean']:.4f}" if hallu else '-')
        rows.append([name] + cells)
    table = _table(['model'] + props + ['Spearman', 'final loss_hallu'], rows)
    return '\n'.join([
        caption, '', table, '', f"Command: `{results['command']}` "
        f"({results['elapsed_s'] / 60:.1f} min)."
    ])


def _cell(stats: Optional[Dict]) -> str:
    return f"{stats['mean']:.1f} +- {stats['std']:.1f}" if stats else '-'


def write_results(results: Dict, work_dir: str) -> None:
    table = markdown_table(results)
    print('\n' + table + '\n')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(f'wrote {work_dir}/results.md, results.json')


def main(argv: Optional[List[str]] = None) -> Dict:
    return DiveDemo(parse_args(argv)).main()
