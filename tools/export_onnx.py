"""Export a config's student-only deploy path to ONNX.

Examples::

    python tools/export_onnx.py CONFIG work_dirs/x/best.pth \
        --out student.onnx --verify
    # also output the hallucinated representation (B, S, D), the D numbers
    # a device sends instead of the frames
    python tools/export_onnx.py CONFIG best.pth --out s.onnx --with-hallu
    # random weights (tests, timing)
    python tools/export_onnx.py CONFIG none --out s.onnx --verify

The file takes float32 pixels 0..255 (the test pipeline's channel order)
``(B, F, 3, H, W)``, or ``(B, 3, H, W)`` when one prediction sees one frame;
only ``B`` is dynamic. Normalisation is inside. Outputs: ``scores`` ``(B,
num_classes)``, the scores ``tools/test.py`` reports (both streams of a MoNet
config; ``HalluciNet.predict_scores``), and, with ``--with-hallu``,
``hallu`` ``(B, S, D)``. See ``hallucinet_plugin/deploy/``.

``--verify`` compares onnxruntime with PyTorch on random pixels at batch 1
and 3 and on frames decoded from ``--video`` (or a generated video) and
exits with status 1 if ``scores`` differ by more than ``--atol-scores``
(default 1e-4, probabilities) or ``hallu`` by more than ``--atol-hallu``
(default 1e-3).
"""
import argparse
import sys

from mmengine.config import DictAction

from hallucinet_plugin.deploy.onnx_export import (
    DEFAULT_ATOL,
    DEFAULT_OPSET,
    export_onnx,
    verify_export,
)
from hallucinet_plugin.utils.config import load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the student-only deploy path (backbone, '
        'hallucination head, classifier; no teacher) to ONNX with a '
        'dynamic batch axis.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', help='student checkpoint, or "none" (random weights)')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument(
        '--with-hallu',
        action='store_true',
        help='second output: the hallucinated representation (B, S, D)')
    parser.add_argument(
        '--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset')
    parser.add_argument(
        '--student-size',
        type=int,
        nargs='+',
        metavar='H [W]',
        help='frame size when the test pipeline does not fix it')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch; exit 1 on a mismatch')
    parser.add_argument(
        '--video', help='video whose decoded frames --verify also checks')
    parser.add_argument(
        '--atol-scores',
        type=float,
        default=DEFAULT_ATOL['scores'],
        help='--verify: max abs difference of the scores')
    parser.add_argument(
        '--atol-hallu',
        type=float,
        default=DEFAULT_ATOL['hallu'],
        help='--verify: max abs difference of the hallucination')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    deploy, out = export_onnx(cfg, args.checkpoint, args.out,
                              args.with_hallu, args.student_size,
                              args.opset)
    print(f'exported {out}')
    if not args.verify:
        return {}
    try:
        report = verify_export(
            cfg, deploy, out, args.video,
            dict(scores=args.atol_scores, hallu=args.atol_hallu))
    except AssertionError as e:
        print(f'verification FAILED: {e}', file=sys.stderr)
        sys.exit(1)
    for name, res in report.items():
        diffs = ', '.join(f'{k} {v:.3g}' for k, v in res.items()
                          if k != 'shape')
        print(f'{name} {tuple(res["shape"])}: max abs diff {diffs}')
    print(f'verification passed (tolerance: scores {args.atol_scores}, '
          f'hallu {args.atol_hallu})')
    return report


if __name__ == '__main__':
    main()
