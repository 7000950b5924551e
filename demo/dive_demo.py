"""The long-term job on the generated diving demo (``python -m demo
dive``);
its results are :mod:`demo.dive_demo_report`'s.

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
``tools/train.py`` and ``tools/test.py`` (:meth:`demo.driver.Driver.run`;
their ``main`` in this process when runs go one at a time, subprocesses
otherwise), so
the demo exercises exactly what a user runs; the metrics are the
plugin's own (:class:`DivePropertyAccuracy`, :class:`SpearmanCorrelation`)
over the predictions ``tools/test.py --dump`` writes.
"""
import argparse
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from demo.dive_demo_report import (
    BASELINE,
    UNLABELLED,
    final_validation,
    grid_row,
    summarize,
    summarize_models,
    teacher_metrics,
    with_mean_accuracy,
    write_results,
)
from demo.driver import (
    REPO,
    Driver,
    add_common_args,
    add_student_args,
    check_counts,
    command_line,
    last_scalar,
    no_loader_workers,
    read_checkpoint,
    run_jobs,
    top1_from_dump,
)

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
    grid_row(pre, fine): (f'{pre}-demo-pt_{STUDENTS[fine][0]}',
                         STUDENTS[fine][1], pre)
    for pre in STAGE1 for fine in ('vanilla', 'hallucinet')
}
GRID_BASELINE = grid_row('vanilla', 'vanilla')
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
        prog='python -m demo dive',
        description='HalluciNet diving demo: teacher, sparse-frame LSTM '
        'students without and with hallucination (also on unlabelled '
        'dives), per-property accuracy and Spearman with confidence '
        'intervals, on generated MTL-AQA-layout data')
    add_common_args(
        parser,
        work_dir='work_dirs/dive_demo',
        data_root='data/dive_demo',
        seeds=3,
        jobs=1,
        jobs_help='student runs trained at once, one CPU thread each (their '
        'output goes to <work-dir>/<model>/seed<k>/console.log); 1 (the '
        'default) runs them one after another with all threads, output '
        'shown. On 2 cores two runs at once are slower: decord hands each '
        'frame over from its decoding thread, and with both cores busy a '
        'dive took 23-33 ms to decode instead of 4',
        quick_help='smoke run: tiny dataset, one or a few epochs per stage')
    add_student_args(
        parser,
        models=list(STUDENTS),
        default=list(STUDENTS),
        models_help='student models to train',
        unlabelled_ratio=1.0,
        online_help='run the teacher online in every HalluciNet run instead '
        'of extracting the feature bank once (about twice the students\' '
        'time)')
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
        '--pretrain',
        action='store_true',
        help='also the paper\'s Table 9: stage 1 on the main demo\'s '
        'videos without and with hallucination, stage 2 on the dives '
        'started from it, without and with (2 x 2 grid, --seeds each)')
    parser.add_argument(
        '--pretrain-data-root',
        default='data/dive_demo_pretrain',
        help='stage 1\'s dataset directory (the main demo\'s generator)')
    args = parser.parse_args(argv)
    check_counts(parser, args)
    args.command = command_line('dive', argv)
    if args.teacher_epochs is not None and args.teacher_epochs < 3:
        parser.error('--teacher-epochs must be >= 3')
    if args.student_epochs is not None and args.student_epochs < 1:
        parser.error('--student-epochs must be >= 1')
    # The rows are compared with vanilla: train it too.
    if BASELINE not in args.models:
        print(f'--models: the rows are compared with {BASELINE}; training '
              'it too')
        args.models = [BASELINE] + args.models
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


class DiveDemo(Driver):
    """The stages of the diving demo; see the module docstring."""

    # One run at a time by default (--jobs 1): training and testing in this
    # process spare each of its 12 runs the imports of a new one.
    IN_PROCESS_TOOLS = ('tools/train.py', 'tools/test.py')
    UNLABELLED = UNLABELLED

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
            raise ValueError(f'{e}. python -m demo dive: remove '
                             f'{self.data_root} (it is regenerated in '
                             'seconds) or pass another --data-root') from e
        self.timings['dataset'] = time.time() - start
        return meta

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
        # No validation while training: the test below reads the same
        # held-out clips, with the sense and the count apart.
        opts = self.teacher_data_options(('train', )) + teacher_schedule(
            self.sizes['teacher_epochs']) + self.loader_options() + [
                'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None'
            ]
        return self.teacher_checkpoint(TEACHER_CONFIG, opts)

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
        """No data-loader workers, whether runs go side by side or not: on
        2 cores, worker processes next to the training threads made decord
        slow (it hands every frame over from its own decoding thread, and
        with both cores busy a dive took 23-33 ms instead of 4); the
        teacher's 12 epochs took 166 s with the configs' 2 workers, 146 s
        with none."""
        return no_loader_workers()

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
            log = self.run_log(work_dir)
            opts = data + self.loader_options(log) + [
                f'train_cfg.max_epochs={epochs}',
                f'train_cfg.val_interval={epochs}',
                f'param_scheduler.0.T_max={epochs}'
            ]
            if STAGE1[kind][1]:
                opts.append(f'model.teacher.checkpoint={teacher_ckpt}')
            self.run(f'stage 1 {kind}', 'tools/train.py', config,
                     '--work-dir', work_dir, '--seed', '0', '--cfg-options',
                     *opts, log=log)
            ckpt = read_checkpoint(work_dir)
            dump = osp.join(work_dir, 'test_predictions.pkl')
            self.run(f'stage 1 {kind} test', 'tools/test.py', config, ckpt,
                     '--work-dir', work_dir, '--dump', dump,
                     '--cfg-options', *data, *self.loader_options(log),
                     'model.teacher=None', log=log)
            return dict(
                checkpoint=ckpt,
                top1=top1_from_dump(dump),
                final_loss_hallu=last_scalar(work_dir, 'loss_hallu'))

        print(f'\n=== stage 1 (Table 9): {", ".join(STAGE1)} on the main '
              f"demo's {meta['splits']['train']['num_videos']} labelled "
              'videos', flush=True)
        results = dict(zip(STAGE1, run_jobs(stage1, list(STAGE1),
                                            self.args.jobs)))
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
        log = self.run_log(work_dir)
        epochs = self.sizes['student_epochs']
        loader_opts = self.loader_options(log)
        config = self.student_config(name)
        opts = self.data_options() + loader_opts + [
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}',
            # One validation, at the end: no best checkpoint to keep.
            'default_hooks.checkpoint.save_best=None',
            f'param_scheduler.0.T_max={epochs}',
        ]
        bank = []
        if (GRID.get(name) or STUDENTS[name])[1]:
            # With the bank, tools/train.py checks the store against this
            # teacher checkpoint, then drops the teacher.
            opts.append(f'model.teacher.checkpoint={teacher_ckpt}')
            if not self.args.online_teacher:
                bank = ['--teacher-bank', self.bank]
        if name in GRID:
            opts.append('custom_hooks.1.checkpoint='
                        f'{self.stage1[GRID[name][2]]}')
        self.run(f'{name} seed {seed}', 'tools/train.py', config,
                 '--work-dir', work_dir, '--seed', str(seed), *bank,
                 *self.unlabelled_args([name]), '--cfg-options', *opts,
                 log=log)
        ckpt = read_checkpoint(work_dir)
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
            command=self.args.command)
        if self.args.pretrain:
            stage1 = self.pretrain(teacher_ckpt)
            grid = self.train_students(teacher_ckpt, list(GRID))
            results['table9'] = dict(
                stage1=stage1,
                baseline=GRID_BASELINE,
                models=summarize_models(grid, GRID_BASELINE))
            results['elapsed_s'] = time.time() - start
        write_results(results, self.work_dir)
        return results


def main(argv: Optional[List[str]] = None) -> Dict:
    return DiveDemo(parse_args(argv)).main()
