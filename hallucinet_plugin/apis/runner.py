"""The command lines of ``tools/train.py`` and ``tools/test.py``.

Same interface as mmaction2's own tools (``CONFIG``, ``--work-dir``,
``--resume [CKPT]``, ``--amp``, ``--cfg-options``, ``--launcher``; for test
``CHECKPOINT`` and ``--dump``), plus the plugin's switches ``--teacher-bank``
and ``--unlabelled``. The plugin is imported first, so its configs
work without ``custom_imports`` and checkpoints load with
``weights_only=True`` (see :mod:`hallucinet_plugin.utils.checkpoint`).
"""
import argparse
import logging
import os
import os.path as osp
from typing import List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.apis.feature_bank import use_teacher_bank
from hallucinet_plugin.apis.unlabelled import use_unlabelled


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (see mmaction2)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_train_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a recognizer')
    _common_args(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or without a value from the latest '
        'checkpoint in the work directory')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the actual batch size')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help='random seed (overrides the config)')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='different seeds for different ranks')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms (CUDNN and torch)')
    parser.add_argument(
        '--teacher-bank',
        metavar='STORE',
        help='train a HalluciNet config from its teacher feature bank '
        '(built with tools/extract_teacher_features.py) instead of running '
        'the teacher online')
    add_unlabelled_args(parser)
    return parser.parse_args(argv)


def add_unlabelled_args(parser: argparse.ArgumentParser) -> None:
    """``--unlabelled LIST [--unlabelled-ratio R]
    [--unlabelled-ignore-labels] [--unlabelled-prefix DIR]``, of
    tools/train.py and tools/extract_teacher_features.py."""
    parser.add_argument(
        '--unlabelled',
        metavar='LIST',
        help='also train the hallucination loss on these unlabelled videos '
        '(a path per line, relative to the train videos\' data_prefix): '
        'each batch adds R unlabelled samples per labelled one')
    parser.add_argument(
        '--unlabelled-ratio',
        metavar='R',
        type=float,
        default=1.0,
        help='unlabelled samples per labelled sample in a batch (default 1)')
    parser.add_argument(
        '--unlabelled-ignore-labels',
        action='store_true',
        help='the --unlabelled list is a labelled list ("<path> <label>"); '
        'use its videos without ever reading the labels')
    parser.add_argument(
        '--unlabelled-prefix',
        metavar='DIR',
        help='folder the --unlabelled paths are relative to (default: the '
        "train videos' data_prefix)")


def apply_unlabelled_args(cfg: Config, args: argparse.Namespace) -> None:
    """Apply the ``--unlabelled`` options (see :func:`use_unlabelled`)."""
    if args.unlabelled is None:
        if args.unlabelled_ignore_labels or args.unlabelled_prefix:
            raise ValueError('--unlabelled-ignore-labels and '
                             '--unlabelled-prefix need --unlabelled')
        return
    use_unlabelled(cfg, args.unlabelled, args.unlabelled_ratio,
                   args.unlabelled_ignore_labels, args.unlabelled_prefix)


def _work_dir(cfg: Config, args: argparse.Namespace) -> str:
    # CLI > config > ./work_dirs/<config name>, as in mmaction2.
    if args.work_dir is not None:
        return args.work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def build_train_config(args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmaction2's train.py."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.teacher_bank is not None:
        use_teacher_bank(cfg, args.teacher_bank)
    apply_unlabelled_args(cfg, args)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    cfg.work_dir = _work_dir(cfg, args)
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp does not support optim_wrapper type '
                             f'{wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    randomness = dict(cfg.get('randomness', None) or {})
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.diff_rank_seed:
        randomness['diff_rank_seed'] = True
    if args.deterministic:
        randomness['deterministic'] = True
    randomness.setdefault('seed', None)
    cfg.randomness = randomness
    return cfg


def setup_cpu_distributed(cfg: Config) -> None:
    """Start ``torch.distributed`` for a ``--launcher pytorch`` run on CPU.

    mmengine's ``init_dist`` pins a CUDA device per rank and its default
    DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail without a
    GPU. On CPU only the process group is needed (over gloo: NCCL is
    GPU-only, so the runtime's default ``nccl`` becomes ``gloo`` with a
    warning), and DDP must wrap the CPU module with ``device_ids=None``.
    Nothing changes where CUDA is available or without a launcher.

    Args:
        cfg (Config): The merged config; ``env_cfg.dist_cfg`` and
            ``model_wrapper_cfg`` are updated in place.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or \
            torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'gloo') != 'gloo':
        print_log(
            f"env_cfg.dist_cfg.backend={dist_cfg['backend']!r} needs GPUs; "
            "no CUDA device here, so using 'gloo'",
            logger='current',
            level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        # torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = cfg.get('model_wrapper_cfg', None) or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def train(argv: Optional[List[str]] = None) -> Runner:
    """``tools/train.py``: build the runner from the config and train."""
    args = parse_train_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = build_train_config(args)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def parse_test_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a recognizer')
    _common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--dump',
        type=str,
        help='dump predictions to a pickle file (.pkl/.pickle)')
    return parser.parse_args(argv)


def build_test_config(args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmaction2's test.py."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = _work_dir(cfg, args)
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must end with .pkl or .pickle, got '
                             f'{args.dump}')
        dump = dict(type='DumpResults', out_file_path=args.dump)
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = [*evaluator, dump]
        else:
            cfg.test_evaluator = [evaluator, dump]
    return cfg


def test(argv: Optional[List[str]] = None) -> dict:
    """``tools/test.py``: evaluate a checkpoint; returns the metrics."""
    args = parse_test_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = build_test_config(args)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    return runner.test()
