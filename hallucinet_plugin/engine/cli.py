"""What the command-line tools share: mmaction2's common train/test
arguments, the ``--unlabelled`` flags of ``tools/train.py`` and
``tools/extract_teacher_features.py``, and the Runner as those tools build
it."""
import argparse
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from ..datasets import use_unlabelled
from .hooks import WeightsOnlyCheckpointHook
from .runner import HalluciNetRunner


def common_args(parser: argparse.ArgumentParser) -> None:
    """mmaction2's arguments of ``tools/train.py`` and ``tools/test.py``:
    ``config``, ``--work-dir``, ``--cfg-options``, ``--launcher``,
    ``--local-rank``."""
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


def work_dir_of(cfg: Config, args: argparse.Namespace) -> str:
    # CLI > config > ./work_dirs/<config name>, as in mmaction2.
    if args.work_dir is not None:
        return args.work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def build_runner(cfg: Config, args: argparse.Namespace) -> Runner:
    """The Runner of a merged config, as both tools build it: CPU
    ``torchrun`` set up, every checkpoint (local, URL, ``torchvision://``
    ...) read with ``weights_only=True``, and checkpoints written so that
    they load that way (:class:`~.runner.HalluciNetRunner`)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    # Safe loaders, CPU torchrun and (a no-op here: the tools applied it)
    # the hallucination section; a failed checkpoint write leaves nothing.
    runner = HalluciNetRunner.from_cfg(cfg)
    if not any(isinstance(h, WeightsOnlyCheckpointHook) for h in runner.hooks):
        runner.register_hook(WeightsOnlyCheckpointHook())
    return runner


def finish_distributed() -> None:
    """End a rank of a ``torchrun`` launch whose work is done: the process
    group torn down, output flushed, and the process left without the
    interpreter's teardown. Native threads (gloo's, decord's reader
    threads) can be destroyed there while still joinable, and the rank
    then died with SIGABRT ("terminate called without an active
    exception") after writing its results: once in CI even with the
    process group torn down first. Without a process group (one process)
    it does nothing and the tool returns as usual."""
    if not (torch.distributed.is_available()
            and torch.distributed.is_initialized()):
        return
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)
