"""MoNet at the feature level, as its paper runs it, on the demo's videos.

Tang, Ma and Zhou (IJCAI 2019) train MoNet on precomputed feature
sequences. Here the sequences come from the main demo (``python -m demo``):

1. prerequisites, reused from the main demo's work directory when it has
   them: the generated videos, the 3D teacher and the vanilla 2D student
   (seed 0); trained here otherwise;
2. two feature stores, written by the feature bank's extraction
   (``extract_teacher_features``) over the train and val videos: the
   teacher's 16-frame clip features every 4 frames (the motion stream) and
   the student's per-frame features (the appearance stream, the student
   wrapped as a 1-frame "teacher" by ``PerFrameBackbone``);
3. training runs on those sequences, in worker processes (mmengine's
   Runner, the configs in ``configs/monet/features/demo/``; ``--jobs``
   chains of runs side by side), ``--seeds`` each:

   * Table 1's shape: the sequence model that hallucinates the motion
     stream (MLP, GRU, biGRU, conv1d, MoNet), with the linear classifier;
   * Table 3's shape: each classifier (linear, TRN, NetVLAD, NeXtVLAD) on
     the appearance stream alone, on appearance + hallucinated motion
     (MoNet) and on appearance + real motion.

   A hallucinated row is MoNet's two stages: (1) the sequence model learns
   to hallucinate, with both classifiers taken frozen from the same seed's
   real two-stream model; (2) the motion classifier is fine-tuned on the
   hallucinated features. Both stages' test accuracy is reported, and
   how much of the real motion features the stage-1 hallucination
   explains on the val videos (R2). ``--unlabelled`` adds MoNet whose
   stage 1 also learns from the main demo's 1600 teacher videos, their
   labels never read.

Every row is top-1 accuracy on the 240 val videos, mean +- std over seeds,
and its difference to the appearance stream alone with Welch's 95%
interval (:mod:`demo.monet_feature_demo_report`). Results go to
``results.md``, ``results.json`` and ``results.png`` in the work directory.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from demo.driver import (
    REPO,
    add_common_args,
    check_counts,
    close_log_files,
    command_line,
    read_checkpoint,
    run_jobs,
)
from demo.monet_feature_demo_report import (
    CLASSIFIERS,
    UNITS,
    markdown,
    summarize,
    write_results,
)

CONFIG_DIR = osp.join(REPO, 'configs', 'monet', 'features', 'demo')
MOTION_CONFIG = osp.join(REPO, 'configs', 'demo',
                         'hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py')
APPEARANCE_CONFIG = osp.join(CONFIG_DIR,
                             'appearance-bank_resnet10t_demo.py')
# --unlabelled: the main demo's teacher videos (its UNLABELLED_LIST).
UNLABELLED_LIST = 'teacher_train_list.txt'
UNLABELLED_STAGE1_LIST = 'train_and_unlabelled_list.txt'
# Epochs of the two stages: the paper's 40 + 20 at half length (see
# configs/_base_/schedules/monet-features_demo_adam-20e.py).
FULL = dict(epochs=20, finetune_epochs=10)
QUICK = dict(epochs=2, finetune_epochs=1)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m demo monet-features',
        description="MoNet's feature-level experiments (the shapes of its "
        'Tables 1 and 3) on the demo videos')
    add_common_args(
        parser,
        work_dir='work_dirs/monet_feature_demo',
        data_root='data/demo',
        seeds=5,
        jobs=2,
        jobs_help='chains of runs (one seed, one classifier) trained side by '
        'side, one process and thread each',
        quick_help="smoke run: the main demo's --quick data, 2 epochs")
    parser.add_argument(
        '--demo-work-dir',
        default='work_dirs/demo',
        help="the main demo's work directory: its teacher and vanilla "
        'student are reused, or trained there')
    parser.add_argument(
        '--units', nargs='+', choices=UNITS, default=list(UNITS),
        help='sequence models of Table 1')
    parser.add_argument(
        '--classifiers', nargs='+', choices=CLASSIFIERS,
        default=list(CLASSIFIERS), help='classifiers of Table 3')
    parser.add_argument(
        '--unlabelled',
        action='store_true',
        help="add a row: MoNet (linear classifier) whose stage 1 also "
        "learns from the main demo's 1600 teacher videos, their labels "
        'never read (written as -1); about 3 more minutes')
    args = parser.parse_args(argv)
    # The intervals need two seeds.
    check_counts(parser, args, min_seeds=2)
    args.command = command_line('monet-features', argv)
    if 'linear' not in args.classifiers:
        # Table 1 uses the linear classifier.
        args.classifiers.insert(0, 'linear')
    if 'monet' not in args.units:
        # Table 3's hallucinated column is MoNet's.
        args.units.append('monet')
    return args


def config_path(kind: str, classifier: str) -> str:
    """``kind``: ``appearance``, ``two-stream``, ``monet``, ``monet-ft``."""
    schedule = 'adam-10e' if kind == 'monet-ft' else 'adam-20e'
    return osp.join(CONFIG_DIR,
                    f'{kind}_{classifier}_{schedule}_demo-features.py')


# ------------------------------------------------------------ prerequisites
def prerequisites(args: argparse.Namespace) -> Dict:
    """Data, teacher and vanilla student of the main demo (reused)."""
    from demo.hallucinet_demo import Demo
    from demo.hallucinet_demo import parse_args as demo_args
    demo = Demo(
        demo_args(['--work-dir', args.demo_work_dir, '--data-root',
                   args.data_root, '--models', 'vanilla', '--seeds', '1'] +
                  (['--quick'] if args.quick else [])))
    start = time.time()
    meta = demo.generate_data()
    teacher = demo.train_teacher()
    last = osp.join(demo.work_dir, 'vanilla', 'seed0', 'last_checkpoint')
    if osp.isfile(last):
        student = read_checkpoint(osp.dirname(last))
        print(f'=== student: {student} exists, reusing it')
    else:
        student = demo.train_student('vanilla', 0, teacher)['checkpoint']
    return dict(
        demo=demo,
        dataset=meta,
        teacher=teacher,
        student=student,
        seconds=time.time() - start)


def _data_cfg(demo, config: str, options: Dict):
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    root = demo.data_root
    opts = dict(data_root=root)
    for split, ann in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts[f'{split}_dataloader.dataset.ann_file'] = f'{root}/{ann}_list.txt'
        opts[f'{split}_dataloader.dataset.data_prefix.video'] = \
            f'{root}/videos'
    cfg.merge_from_dict(dict(opts, **options))
    return cfg


def feature_stores(args: argparse.Namespace, pre: Dict) -> Dict:
    """The motion (teacher) and appearance (student) stores of the train
    and val videos; an extraction resumes what a store lacks."""
    from hallucinet_plugin.feature_bank import extract_teacher_features
    stores = {}
    start = time.time()
    root = pre['demo'].data_root
    lists = [('train', 'val', f'{root}/train_list.txt')]
    if args.unlabelled:
        lists.append(('train', f'{root}/{UNLABELLED_LIST}'))
    for stream, config, ckpt in (('motion', MOTION_CONFIG, pre['teacher']),
                                 ('appearance', APPEARANCE_CONFIG,
                                  pre['student'])):
        out = osp.join(args.work_dir, f'{stream}.lmdb')
        print(f'\n=== {stream} features: {config} -> {out}', flush=True)
        for *splits, train_list in lists:
            cfg = _data_cfg(
                pre['demo'], config, {
                    'model.teacher.checkpoint': ckpt,
                    'train_dataloader.dataset.ann_file': train_list
                })
            stores[stream] = extract_teacher_features(
                cfg, out, splits=tuple(splits), workers=0)
    return dict(stores=stores, seconds=time.time() - start)


def write_lists(args: argparse.Namespace, data_root: str) -> Dict:
    """``<video key> <label>`` lists of the train and val videos, keyed as
    the stores are; returns the videos per split and the classes."""
    from hallucinet_plugin.feature_bank import video_key
    prefix = osp.join(data_root, 'videos')
    counts, classes = {}, set()
    for split in ('train', 'val'):
        lines = []
        with open(osp.join(data_root, f'{split}_list.txt')) as f:
            for line in f:
                if line.strip():
                    name, label = line.split()
                    classes.add(label)
                    lines.append(
                        f'{video_key(osp.join(prefix, name), prefix)} '
                        f'{label}')
        with open(osp.join(args.work_dir, f'{split}_list.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        counts[split] = len(lines)
    if args.unlabelled:
        # The train videos, then the teacher's, labels hidden: nothing in
        # stage 1 reads a label (its classifiers are frozen), and a -1
        # would fail any loss that tried.
        lines = []
        with open(osp.join(data_root, UNLABELLED_LIST)) as f:
            for line in f:
                if line.strip():
                    name = line.split()[0]
                    lines.append(
                        f'{video_key(osp.join(prefix, name), prefix)} -1')
        with open(osp.join(args.work_dir, 'train_list.txt')) as f:
            labelled = f.read()
        with open(osp.join(args.work_dir, UNLABELLED_STAGE1_LIST),
                  'w') as f:
            f.write(labelled + '\n'.join(lines) + '\n')
        counts['unlabelled'] = len(lines)
    return dict(counts, classes=len(classes))


# -------------------------------------------------------------------- runs
def _quiet_runner_type():
    """mmengine's Runner without two of its yapf-formatted copies of the
    config per run (the log's and the work directory's ``.py`` dump; about
    0.2 s each, with the checkpoint's and the message hub's a third of a
    small run's time). The merged config is written as ``config.json``."""
    from mmengine.runner import Runner

    class QuietRunner(Runner):

        def _log_env(self, env_cfg: dict) -> None:
            pass

        def dump_config(self) -> None:
            # Config.dump of a .py config formats it with yapf too.
            with open(osp.join(self.work_dir, 'config.json'), 'w') as f:
                json.dump(self.cfg.to_dict(), f, indent=1, default=str)

    return QuietRunner


def _both_streams(cfg, split: str):
    """A loader of a split's appearance and real motion sequences, the
    test-time steps."""
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg[f'{split}_dataloader'])
    loader.update(
        batch_size=64,
        sampler=dict(type='DefaultSampler', shuffle=False))
    loader.dataset.pipeline = [
        dict(type='LoadFeatureSequence', cache=True),
        dict(
            type='SampleFeatureSequence',
            num_steps=cfg.num_steps,
            test_mode=True),
        dict(type='PackActionInputs', collect_keys=('appearance', 'motion'))
    ]
    loader.dataset.test_mode = True
    return Runner.build_dataloader(loader)


def hallucination_r2(model, cfg) -> float:
    """How much of the real motion features the hallucination explains
    on the val videos: ``1 - sum((h - m)^2) / sum((m - mean)^2)``, the mean
    being the training videos' mean motion feature (0: no better than
    predicting that mean; 1: exact)."""
    import torch
    model.eval()
    with torch.no_grad():
        total, count = 0.0, 0
        for batch in _both_streams(cfg, 'train'):
            motion = torch.stack(batch['inputs']['motion']).float()
            total = total + motion.flatten(0, 1).sum(0)
            count += motion.shape[0] * motion.shape[1]
        mean = total / count
        error = spread = 0.0
        for batch in _both_streams(cfg, 'val'):
            data = model.data_preprocessor(batch, False)
            _, hallu = model.streams(data['inputs'])
            motion = data['inputs']['motion'].flatten(0, 1)
            error += float(((hallu - motion)**2).sum())
            spread += float(((motion - mean)**2).sum())
    return 1.0 - error / spread

class Runs:
    """Training runs of the demo's configs, in this process."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.results: Dict[str, Dict[int, Dict]] = {}

    def options(self, kind: str) -> Dict:
        root = osp.abspath(self.args.work_dir)
        epochs = self.sizes['finetune_epochs' if kind == 'monet-ft' else
                            'epochs']
        opts = {
            'train_cfg.max_epochs': epochs,
            # No validation while training: one test at the end.
            'train_cfg.val_interval': epochs + 1,
            'log_level': 'WARNING',
        }
        for split in ('train', 'val', 'test'):
            ds = f'{split}_dataloader.dataset'
            list_name = 'train' if split == 'train' else 'val'
            opts[f'{ds}.ann_file'] = f'{root}/{list_name}_list.txt'
            for stream in ('appearance', 'motion'):
                opts[f'{ds}.streams.{stream}.store'] = \
                    f'{root}/{stream}.lmdb'
        return opts

    def train(self, name: str, kind: str, classifier: str, seed: int,
              extra: Optional[Dict] = None) -> Dict:
        """One run: train, then test on the val videos."""
        from mmengine.config import Config

        from hallucinet_plugin.engine import WeightsOnlyCheckpointHook
        from hallucinet_plugin.utils.checkpoint_sources import (
            use_safe_checkpoint_loaders,
        )
        work_dir = osp.join(self.args.work_dir, name, f'seed{seed}')
        cfg = Config.fromfile(config_path(kind, classifier))
        cfg.merge_from_dict(dict(self.options(kind), **(extra or {})))
        cfg.work_dir = work_dir
        cfg.randomness = dict(seed=seed)
        cfg.experiment_name = f'{name}_seed{seed}'
        use_safe_checkpoint_loaders()
        start = time.time()
        runner = _quiet_runner_type().from_cfg(cfg)
        runner.register_hook(WeightsOnlyCheckpointHook())
        runner.train()
        metrics = runner.test()
        ckpt = read_checkpoint(work_dir)
        result = dict(
            top1=100.0 * float(metrics['acc/top1']),
            checkpoint=ckpt,
            seconds=time.time() - start)
        line = f'top-1 {result["top1"]:.1f}%'
        if kind == 'monet':
            result['hallu_r2'] = hallucination_r2(runner.model, cfg)
            line += f', R2 of the hallucination {result["hallu_r2"]:.3f}'
        # Each Runner's logger writes a log file: the run is over.
        close_log_files(runner.logger)
        self.results.setdefault(name, {})[seed] = result
        print(f'  {name} seed {seed}: {line} ({result["seconds"]:.1f} s)',
              flush=True)
        return result

    def hallucinated(self,
                     unit: str,
                     classifier: str,
                     seed: int,
                     two_stream: str,
                     suffix: str = '',
                     stage1_options: Optional[Dict] = None) -> None:
        """MoNet's two stages with one sequence model and classifier."""
        name = f'{unit}_{classifier}{suffix}'
        stage1 = self.train(
            f'{name}-stage1', 'monet', classifier, seed, {
                'model.hallu_head.unit': unit,
                'model.hallu_head.loss_hallu.classifier_ckpt': two_stream,
                'model.stream_ckpts.appearance_head': two_stream,
                'model.stream_ckpts.motion_head': two_stream,
                **(stage1_options or {})
            })
        ckpt = stage1['checkpoint']
        self.train(
            f'{name}', 'monet-ft', classifier, seed, {
                'model.hallu_head.unit': unit,
                'model.stream_ckpts.appearance_head': ckpt,
                'model.stream_ckpts.motion_head': ckpt,
                'model.stream_ckpts.hallu_head': ckpt,
            })

    def chain(self, seed: int, classifier: str) -> Dict[str, Dict]:
        """One seed's rows with one classifier, in dependency order: the
        appearance stream, the real two-stream model, then each
        hallucinated row's two stages (every sequence model with the
        linear classifier, MoNet with the others)."""
        self.train(f'appearance_{classifier}', 'appearance', classifier,
                   seed)
        two_stream = self.train(f'two-stream_{classifier}', 'two-stream',
                                classifier, seed)['checkpoint']
        units = self.args.units if classifier == 'linear' else ['monet']
        for unit in units:
            self.hallucinated(unit, classifier, seed, two_stream)
        if self.args.unlabelled and classifier == 'linear':
            ann = osp.join(
                osp.abspath(self.args.work_dir), UNLABELLED_STAGE1_LIST)
            self.hallucinated(
                'monet', classifier, seed, two_stream, '-unlabelled',
                {'train_dataloader.dataset.ann_file': ann,
                 'train_dataloader.dataset.allow_unlabelled': True})
        return {name: seeds[seed] for name, seeds in self.results.items()}


def _chain(job: tuple) -> Dict[str, Dict]:
    """:meth:`Runs.chain` of ``(args, seed, classifier)`` with one thread
    (in a worker process when chains go side by side): the models are
    tiny, so two chains side by side use both cores better than one chain
    with two threads."""
    import torch
    torch.set_num_threads(1)
    args, seed, classifier = job
    return Runs(args).chain(seed, classifier)


def run_all(args: argparse.Namespace) -> Dict[str, Dict[int, Dict]]:
    """Every seed and classifier, ``--jobs`` chains at a time (the linear
    classifier's, the longest, first); ``{row: {seed: result}}``."""
    jobs = [(args, seed, classifier) for classifier in args.classifiers
            for seed in range(args.seeds)]
    if args.jobs > 1:
        print(f'\n=== {len(jobs)} chains of runs (seed x classifier), '
              f'{args.jobs} at a time', flush=True)
    done = run_jobs(_chain, jobs, args.jobs, processes=True)
    results: Dict[str, Dict[int, Dict]] = {}
    for (_, seed, _), runs in zip(jobs, done):
        for name, result in runs.items():
            results.setdefault(name, {})[seed] = result
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    start = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    pre = prerequisites(args)
    stores = feature_stores(args, pre)
    counts = write_lists(args, pre['demo'].data_root)
    runs_start = time.time()
    results = run_all(args)
    runs_seconds = time.time() - runs_start
    summary = summarize(results, args)
    report = dict(
        command=args.command,
        videos=counts,
        chance=100.0 / counts['classes'],
        seconds=dict(
            prerequisites=pre['seconds'],
            features=stores['seconds'],
            runs=runs_seconds,
            total=time.time() - start),
        summary=summary,
        runs=results,
        markdown=markdown(summary, args.seeds))
    write_results(report, args.work_dir)
    print('\n' + report['markdown'])
    print(f"\nvideos: {counts}; times (s): "
          f"{json.dumps({k: round(v) for k, v in report['seconds'].items()})}"
          f'; written to {args.work_dir}/results.{{md,json,png}}')
    return copy.deepcopy(report)
