"""The one driver the three demos share.

- options: :func:`add_common_args` (work and data folders, seeds, jobs,
  the smoke run);
- stages: :class:`Driver` runs the project's own command-line tools, in
  this process (their ``main``) when one runs at a time and the tool is in
  :attr:`Driver.IN_PROCESS_TOOLS`, as a subprocess with one CPU thread and
  its output in a log file when runs go side by side;
- seeds: :meth:`Driver.train_students` trains every model and seed,
  ``--jobs`` at a time, a run after the one it starts from;
  :func:`run_jobs` maps a function over jobs in threads or processes;
- results: :func:`class_predictions` and :func:`top1_from_dump` read
  ``tools/test.py --dump`` files, :func:`read_scalars` mmengine's logged
  scalars; :func:`compare_seeds` the mean, spread and Welch's interval of
  a row; :func:`mean_std`, :func:`signed` and :func:`diff_cell` the
  Markdown cells; :func:`write_results` the ``results.{md,json,png}``
  files; :func:`figure` and :func:`bars_with_seeds` the plots.
"""
import argparse
import contextlib
import glob
import importlib.util
import json
import logging
import os
import os.path as osp
import pickle
import shutil
import subprocess
import sys
import time
from concurrent.futures import (
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from multiprocessing import get_context
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar

from hallucinet_plugin.utils import difference_ci, seed_summary

# The source checkout the demos belong to (configs/, tools/).
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


# ------------------------------------------------------------- options
def add_common_args(parser: argparse.ArgumentParser, *, work_dir: str,
                    data_root: str, seeds: int, jobs: int, jobs_help: str,
                    quick_help: str) -> None:
    """The options every demo has, with its own defaults."""
    parser.add_argument(
        '--work-dir', default=work_dir, help='where everything goes')
    parser.add_argument(
        '--data-root', default=data_root, help='the dataset directory')
    parser.add_argument(
        '--seeds', type=int, default=seeds, help='seeds per model')
    parser.add_argument('--jobs', type=int, default=jobs, help=jobs_help)
    parser.add_argument('--quick', action='store_true', help=quick_help)


def add_student_args(parser: argparse.ArgumentParser, *,
                     models: Sequence[str], default: Sequence[str],
                     models_help: str, unlabelled_ratio: float,
                     online_help: str) -> None:
    """The options of the demos that train students from a teacher."""
    parser.add_argument(
        '--models',
        nargs='+',
        default=list(default),
        choices=list(models),
        help=models_help)
    parser.add_argument(
        '--unlabelled-ratio',
        type=float,
        default=unlabelled_ratio,
        help='unlabelled videos per labelled one in the batches of '
        'hallucinet-unlabelled (tools/train.py --unlabelled-ratio)')
    parser.add_argument(
        '--online-teacher', action='store_true', help=online_help)
    parser.add_argument(
        '--data-seed', type=int, default=0, help='seed of the dataset')


def command_line(demo: str, argv: Optional[Sequence[str]]) -> str:
    """How a demo was run, for its results: ``python -m demo [demo]
    ARGV`` (``sys.argv`` when ``argv`` is None)."""
    if argv is None:
        argv = sys.argv[1:]
        if demo and argv[:1] == [demo]:
            argv = argv[1:]
    return ' '.join(['python -m demo'] + ([demo] if demo else []) +
                    list(argv))


def check_counts(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 min_seeds: int = 1) -> None:
    """Refuse ``--jobs`` below 1 and ``--seeds`` below ``min_seeds``."""
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    if args.seeds < min_seeds:
        parser.error(f'--seeds must be >= {min_seeds}')


# -------------------------------------------------------------- stages
def close_log_files(logger: Optional[logging.Logger] = None) -> None:
    """Close the log files of a finished run's logger (by default mmengine's
    current one, the last Runner's): each Runner opens one, and a demo
    that runs tools in this process runs many."""
    logger = logger or MMLogger.get_current_instance()
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)


def load_tool(tool: str):
    """The module of a tool of the checkout (``tools/train.py``), loaded
    once."""
    name = 'demo_tool_' + osp.splitext(osp.basename(tool))[0]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            name, osp.join(REPO, tool))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def run_tool_main(tool: str, *argv: str):
    """``python TOOL ARGV...`` in this process: the tool's ``main(argv)``,
    from the repository root. A failure raises, as the tool's exit code
    would tell."""
    module = load_tool(tool)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return module.main(list(argv))
    finally:
        os.chdir(cwd)
        close_log_files()


def no_loader_workers() -> List[str]:
    """``--cfg-options`` that decode in the training process, with no
    data-loader worker processes: next to runs or training threads that
    already fill the cores they only compete (measured on 2 cores: runs
    side by side 15% slower with 2 workers each; a dive student's
    iteration 0.41 s with 2 workers, 0.19 s with none)."""
    return [
        f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
        for key in ('num_workers=0', 'persistent_workers=False')
    ]


def read_checkpoint(work_dir: str) -> str:
    """The last checkpoint a Runner wrote into ``work_dir``."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


class Driver:
    """A demo's stages and runs; each demo subclasses it with its stages
    and ``main``.

    Args:
        args (argparse.Namespace): The demo's options (those of
            :func:`add_common_args` at least).
    """

    # Tools run in this process (their ``main``) instead of a subprocess
    # when their output is not logged: saves each run the imports of a
    # new one (about 6 s), for demos that run one tool at a time.
    IN_PROCESS_TOOLS: Sequence[str] = ()
    # Models that also learn from unlabelled videos: their runs, the
    # longest, start first.
    UNLABELLED: Sequence[str] = ()
    # model -> the model whose trained appearance stream it starts from,
    # seed by seed.
    APPEARANCE_FROM: Dict[str, str] = {}

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work_dir = osp.abspath(args.work_dir)
        self.data_root = osp.abspath(args.data_root)
        self.teacher_dir = osp.join(self.work_dir, 'teacher')
        self.bank = osp.join(self.work_dir, 'teacher_bank.lmdb')
        self.timings: Dict[str, float] = {}

    def run(self, stage: str, *cmd: str, log: Optional[str] = None) -> None:
        """Run a tool, its output shown as it comes, or written to ``log``
        (then as a subprocess with one CPU thread: runs side by side); a
        tool in :attr:`IN_PROCESS_TOOLS` runs in this process when its
        output is not logged."""
        start = time.time()
        line = f'=== {stage}: {" ".join(cmd)}'
        if log is None:
            print('\n' + line, flush=True)
            if cmd[0] in self.IN_PROCESS_TOOLS:
                run_tool_main(*cmd)
                self.timings[stage] = time.time() - start
                return
            proc = subprocess.run([sys.executable, *cmd], cwd=REPO)
        else:
            env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
            os.makedirs(osp.dirname(log), exist_ok=True)
            with open(log, 'a') as f:
                f.write(f'\n{line}\n')
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

    def teacher_checkpoint(self, config: str, options: List[str]) -> str:
        """The teacher's checkpoint (``<work-dir>/teacher/teacher.pth``):
        reused when it exists, trained by ``tools/train.py`` otherwise."""
        ckpt = osp.join(self.teacher_dir, 'teacher.pth')
        if osp.isfile(ckpt):
            print(f'=== teacher: {ckpt} exists, reusing it')
            return ckpt
        self.run('teacher', 'tools/train.py', config, '--work-dir',
                 self.teacher_dir, '--cfg-options', *options)
        shutil.copyfile(read_checkpoint(self.teacher_dir), ckpt)
        return ckpt

    def extract_bank(self, teacher_ckpt: str) -> None:
        """The teacher's feature bank of the labelled videos, and of the
        unlabelled ones when a student hallucinates on them."""
        self.run('feature bank', 'tools/extract_teacher_features.py',
                 self.student_config('hallucinet'), '--out', self.bank,
                 '--splits', 'train', '--workers', '2',
                 *self.unlabelled_args(self.args.models), '--cfg-options',
                 f'model.teacher.checkpoint={teacher_ckpt}',
                 *self.data_options())

    def run_log(self, work_dir: str) -> Optional[str]:
        """Where a run's output goes: ``console.log`` of its work
        directory when runs go side by side, the console otherwise."""
        if self.args.jobs > 1:
            return osp.join(work_dir, 'console.log')
        return None

    # What each demo defines.
    def data_options(self) -> List[str]:
        """``--cfg-options`` that point a config at the demo's data."""
        raise NotImplementedError

    def unlabelled_args(self, names: Sequence[str]) -> List[str]:
        """``tools/train.py``'s unlabelled-video options for ``names``."""
        raise NotImplementedError

    def student_config(self, name: str) -> str:
        """The config file of a student model."""
        raise NotImplementedError

    def train_student(self, name: str, seed: int, teacher_ckpt: str,
                      appearance_ckpt: Optional[str] = None) -> Dict:
        """Train and test one model at one seed; returns its result."""
        raise NotImplementedError

    @staticmethod
    def result_line(result: Dict) -> str:
        """A finished run's result, for the progress output."""
        return f"top-1 {result['top1']:.1f}%"

    def train_students(
            self,
            teacher_ckpt: str,
            names: Optional[Sequence[str]] = None) -> Dict[str, List[Dict]]:
        """Every model (``names``, by default ``--models``) and seed,
        ``--jobs`` at a time, with a progress bar when they run side by
        side; ``{model: [result of each seed]}``."""
        names = list(self.args.models if names is None else names)
        # The models come after the one they start from (their parse_args
        # orders them), so a run waits only on runs started before it.
        # The longest runs (those with unlabelled videos) first, so that
        # no long run is left alone at the end with a core idle.
        models = sorted(names, key=lambda m: m not in self.UNLABELLED)
        todo = [(name, seed) for name in models
                for seed in range(self.args.seeds)]
        pending = {job: Future() for job in todo}

        def train(job):
            name, seed = job
            base = self.APPEARANCE_FROM.get(name)
            appearance = None
            if base is not None:
                appearance = pending[(base, seed)].result()['checkpoint']
            try:
                result = self.train_student(name, seed, teacher_ckpt,
                                            appearance)
            except BaseException as e:
                pending[job].set_exception(e)
                raise
            pending[job].set_result(result)
            return result

        on_result = None
        if self.args.jobs > 1:
            print(f'\n=== students: {len(todo)} runs, {self.args.jobs} at '
                  'a time; each logs to <work-dir>/<model>/seed<k>/'
                  'console.log', flush=True)
            bar = ProgressBar(len(todo))

            def on_result(job, result):
                bar.update()
                # After the bar's line, which ends without a newline.
                print(f'\n  {job[0]} seed {job[1]}: '
                      f'{self.result_line(result)}', flush=True)

        run_jobs(train, todo, self.args.jobs, on_result=on_result)
        if self.args.jobs > 1:
            print(flush=True)
        # Rows in the order asked for, seeds in order.
        return {
            name: [
                pending[(name, seed)].result()
                for seed in range(self.args.seeds)
            ]
            for name in names
        }


def run_jobs(fn: Callable,
             jobs: Sequence,
             workers: int,
             processes: bool = False,
             on_result: Optional[Callable] = None) -> List:
    """``fn(job)`` of every job, ``workers`` at a time (in threads, or in
    spawned processes when ``processes``), started in the order given;
    the results in that order. ``on_result(job, result)`` is called as each
    finishes."""
    if workers == 1:
        results = []
        for job in jobs:
            results.append(fn(job))
            if on_result is not None:
                on_result(job, results[-1])
        return results
    pool = ProcessPoolExecutor(
        workers, mp_context=get_context('spawn')) if processes else \
        ThreadPoolExecutor(workers)
    def report(future, job):
        if future.exception() is None:
            on_result(job, future.result())

    with pool:
        futures = [pool.submit(fn, job) for job in jobs]
        if on_result is not None:
            for job, future in zip(jobs, futures):
                future.add_done_callback(lambda f, job=job: report(f, job))
    return [future.result() for future in futures]


# ------------------------------------------------------------- results
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


def read_scalars(work_dir: str) -> Iterator[Dict]:
    """The rows mmengine logged into a run's ``*/vis_data/scalars.json``
    files, in the order written."""
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                yield json.loads(line)


def last_scalar(work_dir: str, key: str) -> Optional[float]:
    """The last logged value of ``key`` in a run, or None."""
    value = None
    for row in read_scalars(work_dir):
        if key in row:
            value = row[key]
    return value


def compare_seeds(values: Sequence[float],
                  baseline: Optional[Sequence[float]] = None) -> Dict:
    """A row over seeds: ``stats`` (mean, std, values) and, against the
    ``baseline`` row's values, ``diff`` (Welch's 95% interval)."""
    out = dict(stats=seed_summary(list(values)))
    if baseline is not None:
        out['diff'] = difference_ci(list(values), list(baseline))
    return out


def mean_std(stats: Optional[Dict], digits: int = 1) -> str:
    """``mean +- std`` of a seed summary, ``-`` for none."""
    if not stats:
        return '-'
    return f"{stats['mean']:.{digits}f} +- {stats['std']:.{digits}f}"


def signed(value: float) -> str:
    return f'{value:+.1f}'


def diff_cell(diff: Optional[Dict], star: bool = False) -> str:
    """A difference with its interval (``+2.0 [-1.0, +5.0]``); ``star``
    marks an interval that excludes 0."""
    if diff is None:
        return '-'
    text = signed(diff['diff'])
    if diff['low'] is not None:
        text += f" [{signed(diff['low'])}, {signed(diff['high'])}]"
        if star and diff['excludes_zero']:
            text += ' *'
    return text


@contextlib.contextmanager
def figure(path: str, ncols: int = 1, figsize=(6, 4)):
    """A figure of ``ncols`` axes (matplotlib, no display), saved to
    ``path`` when the block ends."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def bars_with_seeds(ax, xs: Sequence[float], stats: Sequence[Dict],
                    width: float = 0.8, marker_size: float = None,
                    **bar_kwargs) -> None:
    """A bar per seed summary (its mean) with each seed as a dot."""
    ax.bar(list(xs), [s['mean'] for s in stats], width, **bar_kwargs)
    dots = {} if marker_size is None else dict(ms=marker_size)
    for x, s in zip(xs, stats):
        ax.plot([x] * len(s['values']), s['values'], 'k.', **dots)


def write_results(work_dir: str, markdown: str, results: Dict,
                  plot: Callable[[str], None], plot_name: str,
                  indent: int = 1) -> None:
    """``results.md``, ``results.json`` and the plot into ``work_dir``."""
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(markdown + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=indent, default=str)
    plot(osp.join(work_dir, plot_name))
