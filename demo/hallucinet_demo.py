"""The main job on the embedded demo dataset (``tools/demo.py``).

Generates the demo videos if missing, trains the 3D teacher on the larger
``teacher_train`` split, extracts its feature bank, trains the vanilla 2D
student and the HalluciNet students (fused, direct, 2f) on the smaller
labelled ``train`` split for several seeds, evaluates every checkpoint with
``tools/test.py``, and writes a results table (Markdown + JSON), the cost of
teacher and student per clip, and PNG plots of the training curves.

Every stage runs the project's own command-line tools as subprocesses, so the
demo exercises exactly what a user runs.
"""
import argparse
import glob
import json
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

from mmengine.utils import ProgressBar

from hallucinet_plugin.utils import difference_ci, seed_summary
from hallucinet_plugin.utils.report import markdown_table as _table

# The source checkout this demo belongs to (configs/, tools/).
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
TEACHER_CONFIG = osp.join(CONFIG_DIR,
                          'teacher_r3d-tiny_adam-6e_demo-16x32.py')

# name -> (config, whether it has a teacher). A student with a teacher
# trains from the feature bank (tools/train.py --teacher-bank) unless
# --online-teacher; its config is the online one either way.
STUDENTS = {
    'vanilla': ('vanilla_resnet10t_adam-10e_demo.py', False),
    'hallucinet': ('hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py', True),
    # The same config and labelled videos, plus hallucination on the
    # teacher_train videos without their labels (tools/train.py
    # --unlabelled, see UNLABELLED).
    'hallucinet-unlabelled':
    ('hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py', True),
    'hallucinet-direct':
    ('hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo.py', True),
    'hallucinet-2f': ('hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py',
                      True),
    # MoNet (two streams over 4 segments) and its appearance-only baseline;
    # trained only when asked for (--models monet monet-appearance).
    'monet': ('monet_resnet10t_r3d-tiny_adam-10e_demo.py', True),
    'monet-appearance': ('monet-appearance_resnet10t_adam-10e_demo.py',
                         False),
}
# Not trained by default (15 minutes on 2 CPU cores): --models adds them.
OPTIONAL_STUDENTS = ('hallucinet', 'hallucinet-direct', 'hallucinet-2f',
                     'monet', 'monet-appearance')
# Students that also hallucinate on the teacher_train videos, read without
# their labels (--unlabelled-ratio of them per labelled video in a batch).
UNLABELLED = ('hallucinet-unlabelled', )
# The benchmark preset that prices the demo's student where the paper runs.
REFERENCE_PRESET = 'demo-reference'
UNLABELLED_LIST = 'teacher_train_list.txt'
# A student that starts from another's trained appearance stream, seed by
# seed (model.appearance_ckpt): MoNet learns its hallucination on the fixed
# appearance stream of the appearance-only baseline, as in the paper.
APPEARANCE_FROM = {'monet': 'monet-appearance'}
# A two-stream (late fusion) student is also tested one stream at a time.
STREAMS = {'appearance stream': (1.0, 0.0), 'hallucinated stream': (0.0, 1.0)}

# Dataset sizes: the full demo and the smoke run (--quick).
FULL = dict(
    num_teacher_videos=1600,
    num_train_videos=240,
    num_val_videos=240,
    teacher_epochs=6,
    student_epochs=38,
    student_batch_size=32)
QUICK = dict(
    num_teacher_videos=32,
    num_train_videos=16,
    num_val_videos=16,
    teacher_epochs=1,
    student_epochs=1,
    student_batch_size=None)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='HalluciNet demo: teacher, feature bank, students, '
        'results table and plots on the embedded demo dataset')
    parser.add_argument(
        '--work-dir', default='work_dirs/demo', help='where everything goes')
    parser.add_argument(
        '--data-root', default='data/demo', help='demo dataset directory')
    parser.add_argument(
        '--seeds', type=int, default=3, help='seeds per student model')
    parser.add_argument(
        '--models',
        nargs='+',
        default=[m for m in STUDENTS if m not in OPTIONAL_STUDENTS],
        choices=list(STUDENTS),
        help='student models to train (monet brings in monet-appearance, '
        'whose trained appearance stream it starts from)')
    parser.add_argument(
        '--unlabelled-ratio',
        type=float,
        default=2.0,
        help='unlabelled videos per labelled one in the batches of '
        'hallucinet-unlabelled (tools/train.py --unlabelled-ratio)')
    parser.add_argument(
        '--online-teacher',
        action='store_true',
        help='run the teacher online instead of the feature bank')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke run: tiny dataset, one epoch per stage')
    parser.add_argument(
        '--no-int8',
        action='store_true',
        help='skip the INT8 stage (each HalluciNet row quantised and '
        'compared with its float export on the val videos)')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (work_dir/*/vis_data)')
    parser.add_argument(
        '--data-seed', type=int, default=0, help='seed of the dataset')
    parser.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='student runs trained at once, one CPU thread each (their '
        'output goes to <work-dir>/<model>/seed<k>/console.log); 1 runs '
        'them one after another with all threads, output shown')
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.seeds < 1:
        parser.error('--jobs and --seeds must be >= 1')
    # Each run after the one whose appearance stream it starts from.
    models = []
    for name in args.models:
        base = APPEARANCE_FROM.get(name)
        if base is not None and base not in models:
            if base not in args.models:
                print(f'--models {name} starts from {base}: training it too')
            models.append(base)
        if name not in models:
            models.append(name)
    args.models = models
    return args


def run_tool_main(tool: str, *argv: str):
    """``python TOOL ARGV...`` in this process: the tool module's
    ``main(argv)``, from the repository root. A failure raises, as the
    tool's exit code would tell."""
    import importlib.util
    path = osp.join(REPO, tool)
    name = 'demo_tool_' + osp.splitext(osp.basename(tool))[0]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    from mmengine.logging import MMLogger
    before = set(MMLogger._instance_dict)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return module.main(list(argv))
    finally:
        os.chdir(cwd)
        # Each Runner's logger keeps its log file open; the run is over.
        for name in set(MMLogger._instance_dict) - before:
            logger = MMLogger._instance_dict.pop(name)
            for handler in list(logger.handlers):
                handler.close()
                logger.removeHandler(handler)


class Demo:
    """The stages of the demo; see the module docstring."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.work_dir = osp.abspath(args.work_dir)
        self.data_root = osp.abspath(args.data_root)
        self.teacher_dir = osp.join(self.work_dir, 'teacher')
        self.bank = osp.join(self.work_dir, 'teacher_bank.lmdb')
        self.timings: Dict[str, float] = {}

    # ------------------------------------------------------------ helpers
    def data_options(self) -> List[str]:
        root = self.data_root
        opts = [
            f'data_root={root}',
        ]
        for split, ann in (('train', 'train'), ('val', 'val'),
                           ('test', 'val')):
            opts += [
                f'{split}_dataloader.dataset.ann_file={root}/{ann}_list.txt',
                f'{split}_dataloader.dataset.data_prefix.video={root}/videos'
            ]
        if self.args.tensorboard:
            opts.append('visualizer.vis_backends=[dict(type="LocalVisBackend"'
                        '),dict(type="TensorboardVisBackend")]')
        return opts

    # Tools run in this process (their ``main``) instead of a subprocess:
    # saves the imports (about 6 s) of each run, for demos that run one
    # tool at a time.
    IN_PROCESS_TOOLS = ()

    def run(self, stage: str, *cmd: str, log: Optional[str] = None) -> None:
        """Run a tool as a subprocess, its output shown as it comes, or
        written to ``log`` (then with one CPU thread: runs side by side);
        a tool in :attr:`IN_PROCESS_TOOLS` runs in this process when its
        output is not logged."""
        start = time.time()
        if log is None and cmd[0] in self.IN_PROCESS_TOOLS:
            print(f'\n=== {stage}: {" ".join(cmd)}', flush=True)
            run_tool_main(*cmd)
            self.timings[stage] = time.time() - start
            return
        env = dict(os.environ)
        env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
        if log is None:
            print(f'\n=== {stage}: {" ".join(cmd)}', flush=True)
            proc = subprocess.run([sys.executable, *cmd], cwd=REPO, env=env)
        else:
            env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = '1'
            os.makedirs(osp.dirname(log), exist_ok=True)
            with open(log, 'a') as f:
                f.write(f'\n=== {stage}: {" ".join(cmd)}\n')
                f.flush()
                proc = subprocess.run([sys.executable, *cmd],
                                      cwd=REPO,
                                      env=env,
                                      stdout=f,
                                      stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            where = f'; its output is in {log}' if log else ''
            raise RuntimeError(f'demo stage "{stage}" failed with exit code '
                               f'{proc.returncode}: {" ".join(cmd)}{where}')
        self.timings[stage] = time.time() - start

    # ------------------------------------------------------------- stages
    def generate_data(self) -> Dict:
        from demo.demo_data import generate_demo_dataset
        start = time.time()
        meta = generate_demo_dataset(
            self.data_root,
            seed=self.args.data_seed,
            num_teacher_videos=self.sizes['num_teacher_videos'],
            num_train_videos=self.sizes['num_train_videos'],
            num_val_videos=self.sizes['num_val_videos'])
        self.timings['dataset'] = time.time() - start
        return meta

    def train_teacher(self) -> str:
        ckpt = osp.join(self.teacher_dir, 'teacher.pth')
        if osp.isfile(ckpt):
            print(f'=== teacher: {ckpt} exists, reusing it')
            return ckpt
        epochs = self.sizes['teacher_epochs']
        opts = [
            f'data_root={self.data_root}',
            f'train_dataloader.dataset.ann_file={self.data_root}/'
            'teacher_train_list.txt',
            f'train_dataloader.dataset.data_prefix.video={self.data_root}/'
            'videos',
            f'val_dataloader.dataset.ann_file={self.data_root}/val_list.txt',
            f'val_dataloader.dataset.data_prefix.video={self.data_root}/'
            'videos',
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.0.T_max={epochs}',
        ]
        self.run('teacher', 'tools/train.py', TEACHER_CONFIG, '--work-dir',
                 self.teacher_dir, '--cfg-options', *opts)
        with open(osp.join(self.teacher_dir, 'last_checkpoint')) as f:
            last = f.read().strip()
        shutil.copyfile(last, ckpt)
        return ckpt

    def unlabelled_args(self, names: Sequence[str]) -> List[str]:
        """tools/train.py's switch to the teacher_train videos, unlabelled
        (their labels never read), when one of ``names`` uses them."""
        if not set(names) & set(UNLABELLED):
            return []
        return [
            '--unlabelled',
            osp.join(self.data_root, UNLABELLED_LIST), '--unlabelled-ratio',
            str(self.args.unlabelled_ratio), '--unlabelled-ignore-labels'
        ]

    def extract_bank(self, teacher_ckpt: str) -> None:
        """The bank of the labelled videos, and of the unlabelled ones
        when a student hallucinates on them."""
        config = osp.join(CONFIG_DIR, STUDENTS['hallucinet'][0])
        self.run('feature bank', 'tools/extract_teacher_features.py', config,
                 '--out', self.bank, '--splits', 'train', '--workers', '2',
                 *self.unlabelled_args(self.args.models),
                 '--cfg-options', f'model.teacher.checkpoint={teacher_ckpt}',
                 *self.data_options())

    @staticmethod
    def student_config(name: str) -> str:
        return osp.join(CONFIG_DIR, STUDENTS[name][0])

    def train_student(self,
                      name: str,
                      seed: int,
                      teacher_ckpt: str,
                      appearance_ckpt: Optional[str] = None) -> Dict:
        work_dir = osp.join(self.work_dir, name, f'seed{seed}')
        log = osp.join(work_dir,
                       'console.log') if self.args.jobs > 1 else None
        epochs = self.sizes['student_epochs']
        opts = self.data_options() + [
            f'train_cfg.max_epochs={epochs}',
            # Validated half-way and at the end; only the last checkpoint
            # (and the best) is written: both cost time, not results.
            f'train_cfg.val_interval={max(epochs // 2, 1)}',
            f'default_hooks.checkpoint.interval={epochs}',
            f'param_scheduler.0.T_max={epochs}',
        ]
        if self.sizes['student_batch_size']:
            # Labelled videos per batch (unlabelled ones come on top).
            opts.append('train_dataloader.batch_size='
                        f"{self.sizes['student_batch_size']}")
        # Runs side by side fill the cores: data-loader worker processes
        # would only compete with them (measured: 15% slower with 2 workers
        # per run).
        loader_opts = [] if log is None else [
            f'{split}_dataloader.{key}'
            for split in ('train', 'val', 'test')
            for key in ('num_workers=0', 'persistent_workers=False')
        ]
        opts += loader_opts
        config = self.student_config(name)
        bank = []
        if STUDENTS[name][1]:
            # With the bank, tools/train.py checks the store against this
            # teacher checkpoint, then drops the teacher.
            opts.append(f'model.teacher.checkpoint={teacher_ckpt}')
            if not self.args.online_teacher:
                bank = ['--teacher-bank', self.bank]
        model_cfg = self._model_cfg(config)
        # MoNetLoss reads the teacher's classifier from its checkpoint.
        loss_key = 'model.hallu_head.loss_hallu.classifier_ckpt'
        reads_classifier = 'classifier_ckpt' in model_cfg.get(
            'hallu_head', {}).get('loss_hallu', {})
        if reads_classifier:
            opts.append(f'{loss_key}={teacher_ckpt}')
        if appearance_ckpt is not None:
            opts.append(f'model.appearance_ckpt={appearance_ckpt}')
        self.run(f'{name} seed {seed}', 'tools/train.py', config,
                 '--work-dir', work_dir, '--seed', str(seed), *bank,
                 *self.unlabelled_args([name]),
                 '--cfg-options', *opts, log=log)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            ckpt = f.read().strip()
        dump = osp.join(work_dir, 'test_predictions.pkl')
        # Only the student runs at test time: no teacher, no bank.
        test_opts = self.data_options() + loader_opts + [
            'model.teacher=None'
        ]
        if reads_classifier:
            test_opts.append(f'{loss_key}=None')
        self.run(f'{name} seed {seed} test', 'tools/test.py', config, ckpt,
                 '--work-dir', work_dir, '--dump', dump, '--cfg-options',
                 *test_opts, log=log)
        streams = {}
        if model_cfg.get('type') == 'LateFusionHalluciNet':
            for stream, weights in STREAMS.items():
                stream_dump = osp.join(
                    work_dir, f'test_predictions_{stream.split()[0]}.pkl')
                self.run(
                    f'{name} seed {seed} test {stream}', 'tools/test.py',
                    config, ckpt, '--work-dir', work_dir, '--dump',
                    stream_dump, '--cfg-options', *test_opts,
                    f'model.late_fusion_weights={list(weights)}', log=log)
                streams[stream] = top1_from_dump(stream_dump)
        return dict(
            top1=top1_from_dump(dump),
            curves=read_curves(work_dir),
            checkpoint=ckpt,
            streams=streams)

    def train_students(
            self,
            teacher_ckpt: str,
            names: Optional[Sequence[str]] = None) -> Dict[str, List[Dict]]:
        """Every model (``names``, by default ``--models``) and seed,
        ``--jobs`` at a time, with a progress bar when they run side by
        side."""
        names = list(self.args.models if names is None else names)
        # parse_args put every model after the one it starts from, so a
        # run waits only on runs that were started before it.
        # The longest runs (those with unlabelled videos) first, so that
        # no long run is left alone at the end with a core idle.
        models = sorted(names, key=lambda m: m not in UNLABELLED)
        todo = [(name, seed) for name in models
                for seed in range(self.args.seeds)]
        results: Dict = {}

        def train(job):
            base = APPEARANCE_FROM.get(job[0])
            appearance = None
            if base is not None:
                appearance = results[(base, job[1])].result()['checkpoint']
            return self.train_student(*job, teacher_ckpt, appearance)

        if self.args.jobs == 1:
            for job in todo:
                results[job] = Future()
                results[job].set_result(train(job))
        else:
            print(f'\n=== students: {len(todo)} runs, {self.args.jobs} at '
                  'a time; each logs to <work-dir>/<model>/seed<k>/'
                  'console.log', flush=True)
            bar = ProgressBar(len(todo))

            def one(job):
                result = train(job)
                bar.update()
                # After the bar's line, which ends without a newline.
                print(f'\n  {job[0]} seed {job[1]}: '
                      f'{self.result_line(result)}', flush=True)
                return result

            with ThreadPoolExecutor(self.args.jobs) as pool:
                for job in todo:
                    results[job] = pool.submit(one, job)
            print(flush=True)
        # Rows in the order asked for, seeds in order.
        return {
            name: [
                results[(name, seed)].result()
                for seed in range(self.args.seeds)
            ]
            for name in names
        }

    @staticmethod
    def result_line(result: Dict) -> str:
        """A finished run's result, for the progress output."""
        return f"top-1 {result['top1']:.1f}%"

    @staticmethod
    def _model_cfg(config: str) -> Dict:
        from mmengine.config import Config
        return Config.fromfile(config).model.to_dict()

    def main(self) -> Dict:
        start = time.time()
        meta = self.generate_data()
        teacher_ckpt = self.train_teacher()
        teacher_dump = osp.join(self.teacher_dir, 'test_predictions.pkl')
        self.run('teacher test', 'tools/test.py', TEACHER_CONFIG,
                 teacher_ckpt, '--work-dir', self.teacher_dir, '--dump',
                 teacher_dump, '--cfg-options', *self.data_options())
        uses_bank = not self.args.online_teacher and any(
            STUDENTS[m][1] for m in self.args.models)
        if uses_bank:
            self.extract_bank(teacher_ckpt)
        runs = self.train_students(teacher_ckpt)
        cost = measure_demo_cost(self.student_config, teacher_ckpt,
                                 self.args.models)
        # Each stream of a two-stream student as a row of its own (the
        # same checkpoints; cost shown is the whole two-stream model's).
        streams = {}
        for name, seeds in runs.items():
            for stream in seeds[0].get('streams', {}):
                row = f'{name} ({stream})'
                streams[row] = [
                    dict(run, top1=run['streams'][stream]) for run in seeds
                ]
                cost[row] = cost[name]
        int8 = {}
        if not self.args.no_int8:
            start_int8 = time.time()
            from demo.int8_eval import int8_rows
            int8 = int8_rows(
                runs, self.student_config,
                [n for n in runs if n.startswith('hallucinet')],
                self.data_root, self.work_dir)
            self.timings['int8'] = time.time() - start_int8
        results = summarize(
            {**runs, **streams},
            teacher_top1=top1_from_dump(teacher_dump),
            dataset=meta,
            cost=cost,
            timings=self.timings,
            elapsed=time.time() - start,
            command=' '.join(['python', 'tools/demo.py'] +
                             sys.argv[1:]),
            int8=int8)
        write_results(results, runs, self.work_dir)
        return results


# ----------------------------------------------------------------- results
def class_predictions(path: str) -> List[tuple]:
    """``(scores, label)`` of each sample in a ``tools/test.py --dump``
    pickle of a classifier (mmaction2 1.1's or 1.2's field names)."""
    with open(path, 'rb') as f:
        preds = pickle.load(f)
    if not preds:
        raise ValueError(f'{path}: no predictions')
    out = []
    for pred in preds:
        scores = pred.get('pred_scores', pred.get('pred_score'))
        label = pred.get('gt_labels', pred.get('gt_label'))
        scores = scores['item'] if isinstance(scores, dict) else scores
        label = label['item'] if isinstance(label, dict) else label
        out.append((scores, int(label.reshape(-1)[0])))
    return out


def top1_from_dump(path: str) -> float:
    """Top-1 accuracy (%) from a ``tools/test.py --dump`` pickle."""
    preds = class_predictions(path)
    correct = sum(int(scores.argmax().item() == label)
                  for scores, label in preds)
    return 100.0 * correct / len(preds)


def read_curves(work_dir: str) -> Dict[str, List]:
    """Training curves from mmengine's ``vis_data/scalars.json`` files."""
    curves = dict(step=[], loss_cls=[], loss_hallu=[], val_epoch=[],
                  val_top1=[])
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in files:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
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
        entry = dict(top1=seed_summary([r['top1'] for r in seeds]))
        if name in (int8 or {}):
            entry['int8'] = int8[name]
        base = baseline_of(name, list(runs))
        if base is not None:
            entry['baseline'] = base
            entry['top1_diff'] = difference_ci(
                entry['top1']['values'], [r['top1'] for r in runs[base]])
        final = [
            r['curves']['loss_hallu'][-1] for r in seeds
            if r['curves']['loss_hallu'] and
            r['curves']['loss_hallu'][-1] is not None
        ]
        if final:
            entry['final_loss_hallu'] = seed_summary(final)
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


def _signed(value: float) -> str:
    return f'{value:+.1f}'


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
            shown = f"{_signed(diff['diff'])} vs {entry['baseline']}"
            if diff['low'] is not None:
                shown += f" [{_signed(diff['low'])}, " \
                    f"{_signed(diff['high'])}]"
                if not diff['excludes_zero']:
                    notes.append(
                        f"- {name}: the interval includes 0, so these "
                        f"{num_seeds} seeds do not show a difference to "
                        f"{entry['baseline']}.")
        hallu = entry.get('final_loss_hallu')
        hallu = f"{hallu['mean']:.4f}" if hallu else '-'
        c = cost.get(name, {})
        row = [
            name, f"{top1['mean']:.1f} +- {top1['std']:.1f}", seeds, shown,
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
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, seeds in runs.items():
        for i, run in enumerate(seeds):
            c = run['curves']
            label = name if i == 0 else None
            color = f'C{list(runs).index(name)}'
            axes[0].plot(c['step'], c['loss_cls'], '.-', color=color,
                         alpha=0.6, label=label)
            if any(v is not None for v in c['loss_hallu']):
                axes[1].plot(c['step'], c['loss_hallu'], '.-', color=color,
                             alpha=0.6, label=label)
            axes[2].plot(c['val_epoch'], c['val_top1'], 'o-', color=color,
                         alpha=0.6, label=label)
    for ax, title, xlabel in zip(
            axes, ('loss_cls', 'loss_hallu', 'validation top-1 (%)'),
            ('iteration', 'iteration', 'epoch')):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(results: Dict, runs: Dict, work_dir: str) -> None:
    table = markdown_table(results)
    print('\n' + table + '\n')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(results, curves={
            n: [r['curves'] for r in s] for n, s in runs.items()
        }), f, indent=1)
    plot_curves(runs, osp.join(work_dir, 'training_curves.png'))
    print(f'wrote {work_dir}/results.md, results.json, training_curves.png')


# -------------------------------------------------------------------- cost
def measure_demo_cost(student_config, teacher_ckpt: str,
                      names: List[str]) -> Dict:
    """Per-clip inference cost of the teacher and each student (the deploy
    path: one frame per student frame at the config's ``student_size``, the
    teacher's 16-frame clip at its ``teacher_size``)."""
    import torch
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import hallucinet_plugin  # noqa: F401
    from hallucinet_plugin.deploy import summarize_cost
    init_default_scope('mmaction')
    torch.manual_seed(0)
    cost = {}
    teacher_cfg = Config.fromfile(TEACHER_CONFIG)
    teacher = MODELS.build(teacher_cfg.model).eval()
    size = teacher_cfg.teacher_size
    clip = torch.randn(1, 1, 3, teacher_cfg.clip_len, size, size)
    cost['teacher'] = summarize_cost(
        'teacher', teacher, lambda x: teacher._forward(x, stage='head'),
        [clip])
    for name in names:
        student_cfg = Config.fromfile(student_config(name))
        cfg, size = student_cfg.model, student_cfg.student_size
        cfg.pop('teacher', None)
        loss = (cfg.get('hallu_head') or {}).get('loss_hallu') or {}
        if 'classifier_ckpt' in loss:
            # MoNetLoss's frozen classifier costs nothing at inference.
            loss['classifier_ckpt'] = None
        model = MODELS.build(cfg).eval()
        frames = torch.randn(1, model.frames_per_segment, 3, size, size)
        cost[name] = summarize_cost(
            name, model, lambda x: model._forward(x, stage='head'), [frames])
    # The demo's teacher is sized to train in 2 minutes and costs less than
    # its student: the same student design priced against the paper's
    # teacher, at the paper's sizes, tells a deployer what the pair costs.
    from hallucinet_plugin.deploy import reference_cost
    cost['reference'] = reference_cost(REFERENCE_PRESET, REPO)
    return cost


def main(argv: Optional[List[str]] = None) -> Dict:
    return Demo(parse_args(argv)).main()
