"""Convert, once, a checkpoint written without ``WeightsOnlyCheckpointHook``
so that plain ``torch.load(weights_only=True)`` loads it: mmengine's message
hub objects become dicts, tensors and Python scalars.

The plugin refuses such a file on every ordinary read and names this
command. A checkpoint of an earlier plugin version converts as it is; one
written by plain mmengine also holds ``getattr(HistoryBuffer, 'min')`` and
its like: with ``--trust`` (for checkpoints you wrote yourself)
``builtins.getattr`` is accepted, reaching those four statistics methods
only. Nothing is fully unpickled; any other global, and any numpy value
that is not plain numeric data, is refused.

Example::

    python tools/sanitize_checkpoint.py work_dirs/old/epoch_10.pth \\
        work_dirs/old/epoch_10_clean.pth --trust
"""
import argparse
import os.path as osp
import sys

import torch

from hallucinet_plugin.utils import sanitize_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='checkpoint to convert')
    parser.add_argument(
        'out', nargs='?', help='output path (default: in place)')
    parser.add_argument(
        '--trust',
        action='store_true',
        help='the file is yours, written by mmengine: accept builtins.getattr '
        "(reaching only HistoryBuffer's statistics methods)")
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint not found: {args.checkpoint}')
    refused = torch.serialization.get_unsafe_globals_in_checkpoint(
        args.checkpoint)
    if not refused:
        print(f'{args.checkpoint} already loads with weights_only=True')
        return
    print(f'{args.checkpoint} holds globals weights_only refuses: {refused}')
    try:
        out = sanitize_checkpoint(args.checkpoint, args.out, trust=args.trust)
    except (PermissionError, RuntimeError) as err:
        sys.exit(f'refused: {err}')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
