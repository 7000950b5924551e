"""Compute a HalluciNet config's frozen teacher once, into a feature bank.

Examples::

    # the demo teacher over the training videos, 16-frame clips every 4
    python tools/extract_teacher_features.py \
        configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py \
        --out work_dirs/demo/teacher_bank.lmdb

    # the training videos and the unlabelled ones of
    # tools/train.py CONFIG --unlabelled LIST
    python tools/extract_teacher_features.py CONFIG --out BANK \
        --unlabelled LIST

    # 8 GPUs, each rank writing its own shards of one store
    torchrun --nproc-per-node 8 tools/extract_teacher_features.py \
        CONFIG --out BANK --launcher pytorch

CONFIG is the online-teacher config (``model.teacher``, a
``FrozenTeacher`` with its ``checkpoint``); train the same config with
``tools/train.py CONFIG --teacher-bank BANK``, which checks the store
against it. Re-running resumes: committed videos
are skipped. See ``hallucinet_plugin/feature_bank/`` for the
windows, the teacher view and the store layout.
"""
import argparse

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import get_dist_info, init_dist

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.engine import apply_hallucination
from hallucinet_plugin.engine.cli import (
    add_unlabelled_args,
    apply_unlabelled_args,
)
from hallucinet_plugin.feature_bank.bank_format import DTYPES
from hallucinet_plugin.feature_bank.extraction import extract_teacher_features
from hallucinet_plugin.utils import use_safe_checkpoint_loaders


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the frozen teacher features of a HalluciNet '
        'config over its videos (sliding clips) into a feature bank.')
    parser.add_argument('config', help='online-teacher HalluciNet config')
    parser.add_argument(
        '--out',
        help='the store (default work_dirs/<config name>/teacher_bank.lmdb)')
    parser.add_argument(
        '--stride',
        type=int,
        default=None,
        help='frames between window starts (default clip_len * '
        'frame_interval // 4, e.g. 4 for 16-frame clips)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train'],
        help='dataloaders whose videos to extract (train, val, test)')
    parser.add_argument(
        '--batch-size', type=int, default=32, help='clips per forward')
    parser.add_argument(
        '--workers', type=int, default=2, help='decoding worker processes')
    parser.add_argument(
        '--dtype',
        choices=list(DTYPES),
        default='float16',
        help='storage precision')
    parser.add_argument(
        '--device',
        default=None,
        help='cuda (default when available; this rank\'s GPU) or cpu')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch'],
        default='none',
        help='pytorch: the store\'s shards shared among torchrun ranks')
    parser.add_argument(
        '--shards',
        type=int,
        default=None,
        help='shards of a new store (default 8): one writer each, so at '
        'least the number of ranks that extract into it')
    parser.add_argument(
        '--commit-every',
        type=int,
        default=256,
        help='videos per commit (also every 10 s); a killed run redoes at '
        'most this many')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    # The unlabelled videos of tools/train.py --unlabelled go into the bank
    # with the train split's.
    add_unlabelled_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    # The teacher's own pretrained weights, if any, read weights only too.
    use_safe_checkpoint_loaders()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # A model.hallucination section: the online config the bank is for.
    apply_hallucination(cfg, switch_bank=False)
    apply_unlabelled_args(cfg, args)
    if args.launcher != 'none':
        if torch.cuda.is_available():
            init_dist(args.launcher)
        else:
            # mmengine's init_dist selects a GPU per rank; on CPU only the
            # process group is needed (for the rank and world size).
            torch.distributed.init_process_group('gloo')
    summary = extract_teacher_features(
        cfg,
        out=args.out,
        splits=args.splits,
        stride=args.stride,
        batch_size=args.batch_size,
        workers=args.workers,
        dtype=args.dtype,
        device=args.device,
        progress=not args.no_progress,
        shards=args.shards,
        commit_every=args.commit_every)
    state = 'complete' if summary['complete'] else 'incomplete (other ' \
        'ranks still running, or interrupted)'
    rank, world_size = get_dist_info()
    who = f'[rank {rank}/{world_size}] ' if world_size > 1 else ''
    print(f'{who}{summary["store"]}: {summary["videos"]} videos in '
          f'{args.splits}; this process extracted {summary["extracted"]} '
          f'({summary["windows"]} clips), skipped {summary["skipped"]} '
          f'already stored; store {state}.')
    if args.launcher != 'none':
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
