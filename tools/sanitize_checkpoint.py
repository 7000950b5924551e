"""Rewrite a checkpoint so that plain ``torch.load(weights_only=True)`` loads
it: mmengine's message hub objects become dicts, tensors and Python scalars.

A checkpoint written without ``WeightsOnlyCheckpointHook`` by an earlier
version of the plugin is read weights only. One written by plain mmengine
holds ``getattr`` calls and needs full unpickling, which can run code from
the file: only for checkpoints you wrote yourself, hence ``--trust``.

Example::

    python tools/sanitize_checkpoint.py work_dirs/old/epoch_10.pth --trust
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from hallucinet_plugin.utils import sanitize_checkpoint, unsafe_globals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='checkpoint to rewrite')
    parser.add_argument('--out', help='output path (default: in place)')
    parser.add_argument(
        '--trust',
        action='store_true',
        help='confirm the file is yours: it may be fully unpickled once')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint not found: {args.checkpoint}')
    refused = torch.serialization.get_unsafe_globals_in_checkpoint(
        args.checkpoint)
    if not refused:
        print(f'{args.checkpoint} already loads with weights_only=True')
        return
    print(f'{args.checkpoint} holds globals weights_only refuses: {refused}')
    if unsafe_globals(args.checkpoint) and not args.trust:
        sys.exit('refusing without --trust (full unpickling runs code from '
                 'the file)')
    out = sanitize_checkpoint(args.checkpoint, args.out, trust=args.trust)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
