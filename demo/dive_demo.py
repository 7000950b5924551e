"""The long-term job on the generated diving demo (``tools/dive_demo.py``).

Generates the diving demo (:mod:`demo.dive_demo_data`: event videos in
MTL-AQA's released layout) if missing, trains the tiny 3D teacher on its
motion clips, then trains and tests the sparse-frame LSTM student without
hallucination (vanilla), with it (hallucinet), and with it also on dives
nobody labelled (hallucinet-unlabelled, ``tools/train.py --unlabelled``),
several seeds each, and prints per-property accuracy, their mean and
Spearman's rank correlation of the scores (in %, as the paper's Tables 3-4),
mean and spread per row and the difference to vanilla with Welch's 95%
confidence interval over seeds (also written as Markdown, JSON and a plot).

Like :mod:`demo.hallucinet_demo`, every stage runs the project's own
``tools/train.py`` and ``tools/test.py`` as subprocesses (:meth:`Demo.run`),
so the demo exercises exactly what a user runs; the metrics are the
plugin's own (:class:`DivePropertyAccuracy`, :class:`SpearmanCorrelation`)
over the predictions ``tools/test.py --dump`` writes.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

from demo.hallucinet_demo import REPO, Demo, top1_from_dump
from hallucinet_plugin.utils import difference_ci, seed_summary
from hallucinet_plugin.utils.report import markdown_table as _table

CONFIG_DIR = osp.join(REPO, 'configs', 'mtl_aqa', 'demo')
TEACHER_CONFIG = osp.join(CONFIG_DIR,
                          'teacher_r3d-tiny_adam-12e_dive-demo-16x32.py')
_HALLUCINET = 'hallucinet-lstm_resnet10t_r3d-tiny_1x16x6-adam-20e_' \
    'dive-demo.py'
# name -> (config, whether it has a teacher).
STUDENTS = {
    'vanilla': ('vanilla-lstm_resnet10t_1x16x6-adam-20e_dive-demo.py',
                False),
    'hallucinet': (_HALLUCINET, True),
    # The same config and labelled dives, plus hallucination on the dives
    # of the unlabelled events (their labels never read).
    'hallucinet-unlabelled': (_HALLUCINET, True),
}
UNLABELLED = ('hallucinet-unlabelled', )
BASELINE = 'vanilla'

# The paper's Table 9 (--pretrain): stage 1 on the main demo's labelled
# videos (the stand-in for UCF101) without or with hallucinating the dive
# teacher, stage 2 on the dives started from it, without or with.
PRETRAIN_DIR = osp.join(CONFIG_DIR, 'pretrain')
STAGE1 = {
    'vanilla': ('stage1_vanilla_resnet10t_adam-10e_demo.py', False),
    'hallucinet': ('stage1_hallucinet_resnet10t_r3d-tiny_adam-10e_'
                   'demo.py', True),
}
# row -> (stage-2 config in PRETRAIN_DIR, whether it has a teacher, stage 1)
GRID = {
    f'{pre}-pt_{fine}': (f'{pre}-demo-pt_{STUDENTS[fine][0]}',
                         STUDENTS[fine][1], pre)
    for pre in STAGE1 for fine in ('vanilla', 'hallucinet')
}
GRID_BASELINE = 'vanilla-pt_vanilla'
# Stage 1's data (demo.demo_data) and epochs: the flag and its smoke run.
PRETRAIN = dict(
    num_teacher_videos=8, num_train_videos=240, num_val_videos=120,
    epochs=10)
QUICK_PRETRAIN = dict(
    num_teacher_videos=2, num_train_videos=8, num_val_videos=4, epochs=1)

# Dataset sizes and epochs: the demo and the smoke run (--quick).
FULL = dict(
    num_train_events=28,
    num_test_events=10,
    num_unlabelled_events=28,
    dives_per_event=4,
    num_teacher_clips=1200,
    size=32,
    teacher_epochs=12,
    student_epochs=20)
QUICK = dict(
    num_train_events=2,
    num_test_events=1,
    num_unlabelled_events=1,
    dives_per_event=2,
    num_teacher_clips=24,
    size=32,
    teacher_epochs=3,
    student_epochs=1)
_DATA_KEYS = ('num_train_events', 'num_test_events',
              'num_unlabelled_events', 'dives_per_event',
              'num_teacher_clips', 'size')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='HalluciNet diving demo: teacher, sparse-frame LSTM '
        'students without and with hallucination (also on unlabelled '
        'dives), per-property accuracy and Spearman with confidence '
        'intervals, on generated MTL-AQA-layout data')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/dive_demo',
        help='where everything goes')
    parser.add_argument(
        '--data-root',
        default='data/dive_demo',
        help='dive demo dataset directory')
    parser.add_argument(
        '--seeds', type=int, default=3, help='seeds per student model')
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
        '--teacher-epochs',
        type=int,
        default=None,
        help='override the teacher\'s epochs (at least 3: constant rate '
        'for two thirds, then a cosine decay)')
    parser.add_argument(
        '--unlabelled-ratio',
        type=float,
        default=1.0,
        help='unlabelled dives per labelled one in the batches of '
        'hallucinet-unlabelled (tools/train.py --unlabelled-ratio)')
    parser.add_argument(
        '--online-teacher',
        action='store_true',
        help='run the teacher online in every HalluciNet run instead of '
        'extracting the feature bank once (about twice the students\' time)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='student runs trained at once, one CPU thread each (their '
        'output goes to <work-dir>/<model>/seed<k>/console.log); 1 (the '
        'default) runs them one after another with all threads, output '
        'shown. On 2 cores two runs at once are slower: decord hands each '
        'frame over from its decoding thread, and with both cores busy a '
        'dive took 23-33 ms to decode instead of 4')
    parser.add_argument(
        '--pretrain',
        action='store_true',
        help='also the paper\'s Table 9: stage 1 on the main demo\'s '
        'videos without and with hallucination, stage 2 on the dives '
        'started from it, without and with (2 x 2 grid, --seeds each)')
    parser.add_argument(
        '--pretrain-data-root',
        default='data/dive_demo_pretrain',
        help='stage 1\'s dataset directory (the main demo\'s generator)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke run: tiny dataset, one or a few epochs per stage')
    parser.add_argument(
        '--data-seed', type=int, default=0, help='seed of the dataset')
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.seeds < 1:
        parser.error('--jobs and --seeds must be >= 1')
    if args.teacher_epochs is not None and args.teacher_epochs < 3:
        parser.error('--teacher-epochs must be >= 3')
    if args.student_epochs is not None and args.student_epochs < 1:
        parser.error('--student-epochs must be >= 1')
    # The rows are compared with vanilla: train it too.
    if BASELINE not in args.models:
        print(f'--models: the rows are compared with {BASELINE}; training '
              'it too')
        args.models = [BASELINE] + args.models
    # Demo's stages read it.
    args.tensorboard = False
    return args


def teacher_schedule(epochs: int) -> List[str]:
    """``--cfg-options`` for the teacher's schedule at ``epochs``: constant
    for two thirds, then the cosine decay (its config's two schedulers)."""
    decay_from = max(2 * epochs // 3, 1)
    return [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'param_scheduler.0.end={decay_from}',
        f'param_scheduler.1.begin={decay_from}',
        f'param_scheduler.1.end={epochs}',
        f'param_scheduler.1.T_max={epochs - decay_from}'
    ]


class DiveDemo(Demo):
    """The stages of the diving demo; see the module docstring."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.sizes = dict(QUICK if args.quick else FULL)
        for key in ('student_epochs', 'teacher_epochs'):
            if getattr(args, key) is not None:
                self.sizes[key] = getattr(args, key)
        # Stage-1 checkpoints by kind (--pretrain).
        self.stage1: Dict[str, str] = {}

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

    def unlabelled_args(self, names: Sequence[str]) -> List[str]:
        """The dives of the unlabelled events (a split of the annotation
        dict; tools/train.py never reads their labels)."""
        if not set(names) & set(UNLABELLED):
            return []
        from demo.dive_demo_data import SPLIT_FILES
        return [
            '--unlabelled',
            osp.join(self.data_root, SPLIT_FILES['unlabelled']),
            '--unlabelled-ratio',
            str(self.args.unlabelled_ratio)
        ]

    def generate_data(self) -> Dict:
        from demo.dive_demo_data import generate_dive_demo_dataset
        start = time.time()
        try:
            meta = generate_dive_demo_dataset(
                self.data_root,
                seed=self.args.data_seed,
                **{k: self.sizes[k]
                   for k in _DATA_KEYS})
        except ValueError as e:
            if 'other parameters' not in str(e):
                raise
            raise ValueError(f'{e}. tools/dive_demo.py: remove '
                             f'{self.data_root} (it is regenerated in '
                             'seconds) or pass another --data-root') from e
        self.timings['dataset'] = time.time() - start
        return meta

    def extract_bank(self, teacher_ckpt: str) -> None:
        """The teacher's features over the event videos of the labelled
        dives, and of the unlabelled ones when a row uses them, once; each
        dive finds its clips by their frames in its event video."""
        config = self.student_config('hallucinet')
        self.run('feature bank', 'tools/extract_teacher_features.py', config,
                 '--out', self.bank, '--splits', 'train', '--workers', '2',
                 *self.unlabelled_args(self.args.models), '--cfg-options',
                 f'model.teacher_ckpt={teacher_ckpt}', *self.data_options())

    def teacher_data_options(self, splits=('train', 'val')) -> List[str]:
        root = self.data_root
        opts = [f'data_root={root}']
        for split in splits:
            ann = 'val' if split == 'test' else split
            opts += [
                f'{split}_dataloader.dataset.ann_file={root}/teacher_{ann}'
                '_list.txt',
                f'{split}_dataloader.dataset.data_prefix.video={root}/'
                'teacher_clips'
            ]
        return opts

    def train_teacher(self) -> str:
        ckpt = osp.join(self.teacher_dir, 'teacher.pth')
        if osp.isfile(ckpt):
            print(f'=== teacher: {ckpt} exists, reusing it')
            return ckpt
        opts = self.teacher_data_options() + teacher_schedule(
            self.sizes['teacher_epochs']) + self.loader_options()
        self.run('teacher', 'tools/train.py', TEACHER_CONFIG, '--work-dir',
                 self.teacher_dir, '--cfg-options', *opts)
        with open(osp.join(self.teacher_dir, 'last_checkpoint')) as f:
            last = f.read().strip()
        shutil.copyfile(last, ckpt)
        return ckpt

    def test_teacher(self, ckpt: str) -> Dict:
        dump = osp.join(self.teacher_dir, 'test_predictions.pkl')
        self.run('teacher test', 'tools/test.py', TEACHER_CONFIG, ckpt,
                 '--work-dir', self.teacher_dir, '--dump', dump,
                 '--cfg-options', *self.teacher_data_options(('test', )),
                 *self.loader_options())
        return teacher_metrics(dump)

    @staticmethod
    def student_config(name: str) -> str:
        if name in GRID:
            return osp.join(PRETRAIN_DIR, GRID[name][0])
        return osp.join(CONFIG_DIR, STUDENTS[name][0])

    @staticmethod
    def loader_options(log: Optional[str] = None) -> List[str]:
        """Decoding in the training process, no data-loader workers: on 2
        cores, worker processes next to the training threads made decord
        slow (it hands every frame over from its own decoding thread, and
        with both cores busy a dive took 23-33 ms instead of 4): a student
        iteration took 0.41 s with the configs' 2 workers and 0.19 s with
        none, the teacher's 12 epochs 166 s and 146 s."""
        return [
            f'{split}_dataloader.{key}'
            for split in ('train', 'val', 'test')
            for key in ('num_workers=0', 'persistent_workers=False')
        ]

    def pretrain(self, teacher_ckpt: str) -> Dict[str, Dict]:
        """Stage 1 of Table 9, both kinds side by side: the dive student
        on the main demo's labelled videos, without and with hallucinating
        the dive teacher; each tested on the demo's validation videos."""
        from demo.demo_data import generate_demo_dataset
        sizes = QUICK_PRETRAIN if self.args.quick else PRETRAIN
        root = osp.abspath(self.args.pretrain_data_root)
        start = time.time()
        meta = generate_demo_dataset(
            root,
            seed=self.args.data_seed,
            **{k: v
               for k, v in sizes.items() if k != 'epochs'})
        self.timings['stage 1 dataset'] = time.time() - start
        data = [f'data_root={root}']
        for split, ann in (('train', 'train'), ('val', 'val'),
                           ('test', 'val')):
            data += [
                f'{split}_dataloader.dataset.ann_file={root}/{ann}_list.txt',
                f'{split}_dataloader.dataset.data_prefix.video={root}/videos'
            ]
        epochs = sizes['epochs']

        def stage1(kind: str) -> Dict:
            config = osp.join(PRETRAIN_DIR, STAGE1[kind][0])
            work_dir = osp.join(self.work_dir, 'pretrain', kind)
            log = osp.join(work_dir,
                           'console.log') if self.args.jobs > 1 else None
            opts = data + self.loader_options(log) + [
                f'train_cfg.max_epochs={epochs}',
                f'train_cfg.val_interval={epochs}',
                f'param_scheduler.0.T_max={epochs}'
            ]
            if STAGE1[kind][1]:
                opts.append(f'model.teacher_ckpt={teacher_ckpt}')
            self.run(f'stage 1 {kind}', 'tools/train.py', config,
                     '--work-dir', work_dir, '--seed', '0', '--cfg-options',
                     *opts, log=log)
            with open(osp.join(work_dir, 'last_checkpoint')) as f:
                ckpt = f.read().strip()
            dump = osp.join(work_dir, 'test_predictions.pkl')
            self.run(f'stage 1 {kind} test', 'tools/test.py', config, ckpt,
                     '--work-dir', work_dir, '--dump', dump,
                     '--cfg-options', *data, *self.loader_options(log),
                     'model.teacher_ckpt=None', log=log)
            return dict(
                checkpoint=ckpt,
                top1=top1_from_dump(dump),
                final_loss_hallu=last_scalar(work_dir, 'loss_hallu'))

        print(f'\n=== stage 1 (Table 9): {", ".join(STAGE1)} on the main '
              f"demo's {meta['splits']['train']['num_videos']} labelled "
              'videos', flush=True)
        with ThreadPoolExecutor(self.args.jobs) as pool:
            results = dict(zip(STAGE1, pool.map(stage1, STAGE1)))
        for kind, result in results.items():
            print(f"  stage 1 {kind}: top-1 {result['top1']:.1f}% on "
                  f"{meta['splits']['val']['num_videos']} videos",
                  flush=True)
        self.stage1 = {k: r['checkpoint'] for k, r in results.items()}
        return dict(
            runs=results,
            epochs=epochs,
            train_videos=meta['splits']['train']['num_videos'],
            val_videos=meta['splits']['val']['num_videos'])

    def train_student(self,
                      name: str,
                      seed: int,
                      teacher_ckpt: str,
                      appearance_ckpt: Optional[str] = None) -> Dict:
        work_dir = osp.join(self.work_dir, name, f'seed{seed}')
        log = osp.join(work_dir,
                       'console.log') if self.args.jobs > 1 else None
        epochs = self.sizes['student_epochs']
        loader_opts = self.loader_options(log)
        config = self.student_config(name)
        opts = self.data_options() + loader_opts + [
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}',
            f'param_scheduler.0.T_max={epochs}',
        ]
        bank = []
        if (GRID.get(name) or STUDENTS[name])[1]:
            # With the bank, tools/train.py checks the store against this
            # teacher checkpoint, then drops the teacher.
            opts.append(f'model.teacher_ckpt={teacher_ckpt}')
            if not self.args.online_teacher:
                bank = ['--teacher-bank', self.bank]
        if name in GRID:
            opts.append('custom_hooks.1.checkpoint='
                        f'{self.stage1[GRID[name][2]]}')
        self.run(f'{name} seed {seed}', 'tools/train.py', config,
                 '--work-dir', work_dir, '--seed', str(seed), *bank,
                 *self.unlabelled_args([name]), '--cfg-options', *opts,
                 log=log)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        # The test dives are the validation set: the last epoch's
        # validation is the test (student only, no teacher; the plugin's
        # DivePropertyAccuracy and SpearmanCorrelation). A separate
        # tools/test.py run would give the same numbers for 8 more seconds
        # per run (tests/demo/test_dive_demo.py checks that it does).
        return dict(
            metrics=with_mean_accuracy(final_validation(work_dir)),
            final_loss_hallu=last_scalar(work_dir, 'loss_hallu'),
            checkpoint=ckpt)

    @staticmethod
    def result_line(result: Dict) -> str:
        m = result['metrics']
        return (f"mean accuracy {m['acc/mean']:.1f}%, Spearman "
                f"{m.get('aqa/spearman', float('nan')):.1f}%")

    def main(self) -> Dict:
        start = time.time()
        meta = self.generate_data()
        teacher_ckpt = self.train_teacher()
        teacher = self.test_teacher(teacher_ckpt)
        print(f"\n=== teacher: top-1 {teacher['top1']:.1f}% on "
              f"{teacher['clips']} held-out motion clips (chance "
              f"{teacher['chance']:.1f}%)", flush=True)
        if not self.args.online_teacher and any(
                STUDENTS[m][1] for m in self.args.models):
            self.extract_bank(teacher_ckpt)
        runs = self.train_students(teacher_ckpt)
        results = summarize(
            runs,
            teacher=teacher,
            dataset=meta,
            epochs=dict(
                teacher=self.sizes['teacher_epochs'],
                students=self.sizes['student_epochs']),
            unlabelled_ratio=self.args.unlabelled_ratio,
            timings=self.timings,
            elapsed=time.time() - start,
            command=' '.join(['python', 'tools/dive_demo.py'] +
                             sys.argv[1:]))
        if self.args.pretrain:
            stage1 = self.pretrain(teacher_ckpt)
            grid = self.train_students(teacher_ckpt, list(GRID))
            results['table9'] = dict(
                stage1=stage1, models=summarize_models(grid, GRID_BASELINE))
            results['elapsed_s'] = time.time() - start
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


def final_validation(work_dir: str) -> Dict[str, float]:
    """The dive metrics of the last validation that mmengine logged
    (``vis_data/scalars.json``): per-property accuracy and Spearman, %."""
    metrics = None
    for name in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, name, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if any(k.startswith(('acc/', 'aqa/')) for k in row):
                    metrics = {
                        k: v
                        for k, v in row.items()
                        if k.startswith(('acc/', 'aqa/'))
                    }
    if metrics is None:
        raise ValueError(f'{work_dir}: no validation metrics logged')
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
    with open(path, 'rb') as f:
        preds = pickle.load(f)
    if not preds:
        raise ValueError(f'{path}: no predictions')
    rate_classes = len(TEACHER_CLASSES) // 2
    sense = rate = 0
    for pred in preds:
        scores = pred.get('pred_scores', pred.get('pred_score'))
        label = pred.get('gt_labels', pred.get('gt_label'))
        scores = scores['item'] if isinstance(scores, dict) else scores
        label = label['item'] if isinstance(label, dict) else label
        guess, truth = int(scores.argmax()), int(label.reshape(-1)[0])
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
        keys = list(seeds[0]['metrics'])
        entry = dict(metrics={
            key: seed_summary([run['metrics'][key] for run in seeds])
            for key in keys
        })
        if name != baseline and baseline in runs:
            entry['baseline'] = baseline
            entry['diff'] = {
                key: difference_ci(
                    entry['metrics'][key]['values'],
                    [run['metrics'][key] for run in runs[baseline]])
                for key in keys
            }
        hallu = [
            r['final_loss_hallu'] for r in seeds
            if r['final_loss_hallu'] is not None
        ]
        if hallu:
            entry['final_loss_hallu'] = seed_summary(hallu)
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
        cells = [_cell(entry['metrics'][key]) for key, _ in columns]
        hallu = entry.get('final_loss_hallu')
        cells.append(f"{hallu['mean']:.3f}" if hallu else '-')
        rows.append([name] + cells)
    lines = [
        _table(['model'] + [h for _, h in columns] + ['final loss_hallu'],
               rows), ''
    ]
    diff_rows = [[name] + [_diff_cell(entry['diff'][key])
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
    for pre in STAGE1:
        cells = []
        for fine in ('vanilla', 'hallucinet'):
            cells.append(_cell(models[f'{pre}-pt_{fine}']['metrics']
                               ['acc/mean']))
        grid.append([f'pre-training {pre}'] + cells)
    lines += [
        _table(['', 'fine-tuning vanilla', 'fine-tuning hallucinet'], grid),
        ''
    ]
    return lines + model_tables(models, columns, GRID_BASELINE)


def _cell(stats: Optional[Dict]) -> str:
    return f"{stats['mean']:.1f} +- {stats['std']:.1f}" if stats else '-'


def _diff_cell(diff: Dict) -> str:
    text = f"{diff['diff']:+.1f}"
    if diff['low'] is not None:
        text += f" [{diff['low']:+.1f}, {diff['high']:+.1f}]"
        if diff['excludes_zero']:
            text += ' *'
    return text


def plot_results(results: Dict, path: str) -> None:
    """Bars per metric and model (mean, std as error bar) with each seed as
    a dot."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    models = results['models']
    first = next(iter(models.values()))['metrics']
    columns = [c for c in metric_columns(results) if c[0] in first]
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(2 + 1.4 * len(columns), 4))
    x = np.arange(len(columns))
    for i, (name, entry) in enumerate(models.items()):
        stats = [entry['metrics'][key] for key, _ in columns]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, [s['mean'] for s in stats], width,
               yerr=[s['std'] for s in stats], capsize=3, label=name,
               color=f'C{i}', alpha=0.7)
        for p, s in zip(pos, stats):
            ax.plot([p] * len(s['values']), s['values'], 'k.', ms=3)
    ax.set_xticks(x)
    ax.set_xticklabels([h for _, h in columns], rotation=20)
    ax.set_ylabel('%')
    ax.axhline(0, color='k', lw=0.5)
    ax.set_title('diving demo: accuracy per property, their mean, Spearman')
    ax.grid(axis='y', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(results: Dict, work_dir: str) -> None:
    table = markdown_table(results)
    print('\n' + table + '\n')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    plot_results(results, osp.join(work_dir, 'results.png'))
    print(f'wrote {work_dir}/results.md, results.json, results.png')


def main(argv: Optional[List[str]] = None) -> Dict:
    return DiveDemo(parse_args(argv)).main()
