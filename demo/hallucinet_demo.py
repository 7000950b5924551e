"""The main job on the embedded demo dataset (``python -m demo``).

Generates the demo videos if missing, trains the 3D teacher on the larger
``teacher_train`` split, extracts its feature bank, trains the vanilla 2D
student and the HalluciNet students (fused, direct, 2f) on the smaller
labelled ``train`` split for several seeds, evaluates every checkpoint with
``tools/test.py``, and writes a results table (Markdown + JSON), the cost of
teacher and student per clip, and PNG plots of the training curves
(:mod:`demo.hallucinet_demo_report`).

Every stage runs the project's own command-line tools (``tools/train.py``,
``tools/test.py``, ``tools/extract_teacher_features.py``) as subprocesses
(:class:`demo.driver.Driver`), so the demo exercises exactly what a user
runs; the student runs go ``--jobs`` at a time, one CPU thread each.
"""
import argparse
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from demo.driver import (
    REPO,
    Driver,
    add_common_args,
    add_student_args,
    check_counts,
    command_line,
    no_loader_workers,
    read_checkpoint,
    top1_from_dump,
)
from demo.hallucinet_demo_report import (
    APPEARANCE_FROM,
    REFERENCE_PRESET,
    UNLABELLED,
    read_curves,
    summarize,
    write_results,
)

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
UNLABELLED_LIST = 'teacher_train_list.txt'
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
        prog='python -m demo',
        description='HalluciNet demo: teacher, feature bank, students, '
        'results table and plots on the embedded demo dataset',
        epilog='The other demos: python -m demo dive --help, python -m demo '
        'monet-features --help; the dataset alone: python -m demo data '
        '--help.')
    add_common_args(
        parser,
        work_dir='work_dirs/demo',
        data_root='data/demo',
        seeds=3,
        jobs=2,
        jobs_help='student runs trained at once, one CPU thread each (their '
        'output goes to <work-dir>/<model>/seed<k>/console.log); 1 runs '
        'them one after another with all threads, output shown',
        quick_help='smoke run: tiny dataset, one epoch per stage')
    add_student_args(
        parser,
        models=list(STUDENTS),
        default=[m for m in STUDENTS if m not in OPTIONAL_STUDENTS],
        models_help='student models to train (monet brings in '
        'monet-appearance, whose trained appearance stream it starts from)',
        unlabelled_ratio=2.0,
        online_help='run the teacher online instead of the feature bank')
    parser.add_argument(
        '--no-int8',
        action='store_true',
        help='skip the INT8 stage (each HalluciNet row quantised and '
        'compared with its float export on the val videos)')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (work_dir/*/vis_data)')
    args = parser.parse_args(argv)
    check_counts(parser, args)
    args.command = command_line('', argv)
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


class Demo(Driver):
    """The stages of the demo; see the module docstring."""

    UNLABELLED = UNLABELLED
    APPEARANCE_FROM = APPEARANCE_FROM

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.sizes = QUICK if args.quick else FULL

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
        return self.teacher_checkpoint(TEACHER_CONFIG, opts)

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

    @staticmethod
    def student_config(name: str) -> str:
        return osp.join(CONFIG_DIR, STUDENTS[name][0])

    def train_student(self,
                      name: str,
                      seed: int,
                      teacher_ckpt: str,
                      appearance_ckpt: Optional[str] = None) -> Dict:
        work_dir = osp.join(self.work_dir, name, f'seed{seed}')
        log = self.run_log(work_dir)
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
        # Runs side by side fill the cores: no data-loader workers.
        loader_opts = [] if log is None else no_loader_workers()
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
        ckpt = read_checkpoint(work_dir)
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
            command=self.args.command,
            int8=int8)
        write_results(results, runs, self.work_dir)
        return results



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
    from tools.analysis_tools.benchmark import reference_cost
    cost['reference'] = reference_cost(REFERENCE_PRESET, REPO)
    return cost


def main(argv: Optional[List[str]] = None) -> Dict:
    return Demo(parse_args(argv)).main()
