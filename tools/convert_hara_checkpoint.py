"""Convert a Hara et al. 3D-ResNeXt checkpoint for mmaction2.

Example::

    python tools/convert_hara_checkpoint.py resnext-101-kinetics.pth \
        checkpoints/resnext101_hara_kinetics.pth
"""
import argparse
import sys

from hallucinet_plugin.converters.hara_checkpoint import (
    convert_hara_checkpoint,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a kenshohara/3D-ResNets-PyTorch ResNeXt '
        'checkpoint into an mmengine checkpoint for ResNeXt3D.')
    parser.add_argument('src', help='Hara checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--keep-fc',
        action='store_true',
        help='keep the Kinetics classifier (as cls_head.fc_cls. under a '
        "'backbone.' prefix, else as fc.)")
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help="prefix of backbone keys: 'backbone.' for a Recognizer3D "
        "(default), '' for a bare ResNeXt3D")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        meta = convert_hara_checkpoint(
            args.src, args.dst, keep_fc=args.keep_fc, prefix=args.prefix)
    except (OSError, RuntimeError, ValueError) as err:
        print(f'convert_hara_checkpoint: error: {err}', file=sys.stderr)
        return 1
    print(f"{args.src} ({meta['arch']}) -> {args.dst}: "
          f"ResNeXt3D({meta['resnext3d']})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
