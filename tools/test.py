"""Test a recognizer; the same command line as mmaction2's tools/test.py.

Example::

    python tools/test.py configs/hallucinet_vgg11_ucf.py CKPT
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.engine import apply_hallucination
from hallucinet_plugin.engine.cli import (
    build_runner,
    common_args,
    finish_distributed,
    work_dir_of,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a recognizer')
    common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--dump',
        type=str,
        help='dump predictions to a pickle file (.pkl/.pickle)')
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    """Merge the command line into the config, as mmaction2's test.py."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # Only the student runs at test time: the section makes the model, no
    # bank is read.
    apply_hallucination(cfg, switch_bank=False)
    cfg.launcher = args.launcher
    cfg.work_dir = work_dir_of(cfg, args)
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


def main(argv: Optional[List[str]] = None) -> dict:
    """``tools/test.py``: evaluate a checkpoint; returns the metrics."""
    args = parse_args(argv)
    runner = build_runner(build_config(args), args)
    metrics = runner.test()
    finish_distributed()
    return metrics

if __name__ == '__main__':
    main()
