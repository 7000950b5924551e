"""Train a recognizer; the same command line as mmaction2's tools/train.py.

Example::

    python tools/train.py configs/hallucinet_vgg11_ucf.py
"""
import argparse
from typing import List, Optional

from mmengine.config import Config
from mmengine.runner import Runner

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.engine import apply_hallucination
from hallucinet_plugin.engine.cli import (
    add_unlabelled_args,
    apply_unlabelled_args,
    build_runner,
    common_args,
    finish_distributed,
    work_dir_of,
)
from hallucinet_plugin.feature_bank import (
    check_teacher_bank,
    collect_videos,
    use_teacher_bank,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a recognizer')
    common_args(parser)
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


def build_config(args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmaction2's train.py."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # A model.hallucination section on a stock recipe (and a teacher_bank
    # key), as HalluciNetRunner applies it under mmaction2's own tools.
    apply_hallucination(cfg)
    if args.teacher_bank is not None:
        # Refuse a store of another teacher, view or sampling before the
        # switch drops the teacher from the config; the dumped config in
        # the work dir records what was compared.
        record = check_teacher_bank(cfg, args.teacher_bank)
        use_teacher_bank(cfg, args.teacher_bank)
        cfg.teacher_bank_check = record
    apply_unlabelled_args(cfg, args)
    if args.unlabelled is not None and cfg.get('teacher_bank'):
        # Labelled and unlabelled videos read one store by their keys:
        # two files under one key are refused, as extraction refuses them.
        collect_videos(cfg, ('train', ))
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_of(cfg, args)
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


def main(argv: Optional[List[str]] = None) -> Runner:
    """``tools/train.py``: build the runner from the config and train."""
    args = parse_args(argv)
    runner = build_runner(build_config(args), args)
    runner.train()
    finish_distributed()
    return runner



if __name__ == '__main__':
    main()
