"""Rewrite a checkpoint written by plain mmengine so that the plugin loads it
with ``torch.load(weights_only=True)``.

Only for checkpoints you wrote yourself: reading the old file needs full
unpickling, which can run code from the file, hence the required ``--trust``.

Example::

    python tools/sanitize_checkpoint.py work_dirs/old/epoch_10.pth --trust
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from hallucinet_plugin.utils import sanitize_checkpoint, unsafe_globals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='checkpoint to rewrite')
    parser.add_argument('--out', help='output path (default: in place)')
    parser.add_argument(
        '--trust',
        action='store_true',
        help='confirm the file is yours: it is fully unpickled once')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        sys.exit(f'checkpoint not found: {args.checkpoint}')
    bad = unsafe_globals(args.checkpoint)
    if not bad:
        print(f'{args.checkpoint} already loads with weights_only=True')
        return
    print(f'{args.checkpoint} holds globals weights_only refuses: {bad}')
    if not args.trust:
        sys.exit('refusing without --trust (full unpickling runs code from '
                 'the file)')
    out = sanitize_checkpoint(args.checkpoint, args.out, trust=True)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
