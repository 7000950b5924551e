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

``--int8`` also writes an INT8 model (``OUT`` with ``.int8.onnx``): static
post-training quantisation with onnxruntime (QDQ, per-channel int8
weights, uint8 activations), calibrated on ``--calib-videos`` videos of
``--calib LIST`` through the config's test pipeline, then compared with
the float model on ``--int8-eval LIST`` (default: the config's validation
list): top-1 of both, their agreement, class-probability differences and,
with ``--with-hallu``, the cosine similarity of the hallucinated
representations. The comparison is printed and written to ``OUT`` with
``.int8.json``::

    python tools/export_onnx.py CONFIG best.pth --out s.onnx --int8 \
        --calib data/train_list.txt --calib-prefix data/videos
"""
import argparse
import json
import os.path as osp
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
        '--int8',
        action='store_true',
        help='also write a statically quantised INT8 model (OUT.int8.onnx)')
    parser.add_argument(
        '--calib', metavar='LIST', help='--int8: calibration video list')
    parser.add_argument(
        '--calib-prefix',
        metavar='DIR',
        help='--int8: folder the calibration list\'s paths are under')
    parser.add_argument(
        '--calib-videos',
        type=int,
        default=32,
        help='--int8: calibration videos (the first N of the list)')
    parser.add_argument(
        '--int8-eval',
        metavar='LIST',
        help='--int8: videos to compare INT8 with float on (default: the '
        'config\'s validation list and prefix)')
    parser.add_argument(
        '--int8-eval-prefix',
        metavar='DIR',
        help='--int8: folder the --int8-eval paths are under')
    parser.add_argument(
        '--int8-eval-videos',
        type=int,
        default=None,
        help='--int8: compare on the first N videos only')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.int8 and not args.calib:
        parser.error('--int8 needs --calib LIST (training videos)')
    if args.calib and not args.int8:
        parser.error('--calib goes with --int8')
    if args.calib_videos < 1:
        parser.error('--calib-videos must be >= 1')
    return args


def int8_export(cfg, args, out: str) -> dict:
    """Quantise the exported model and compare it with the float one."""
    from hallucinet_plugin.deploy.quantize import (
        calibration_frames,
        compare_int8,
        config_val_list,
        quantize_int8,
        read_video_list,
    )
    calib = read_video_list(args.calib, args.calib_prefix, args.calib_videos)
    int8 = osp.splitext(out)[0] + '.int8.onnx'
    quantize_int8(out, int8, calibration_frames(cfg, calib))
    print(f'exported {int8} (calibrated on {len(calib)} videos of '
          f'{args.calib})')
    eval_list, prefix = args.int8_eval, args.int8_eval_prefix
    if eval_list is None:
        eval_list, prefix = config_val_list(cfg)
    report = compare_int8(cfg, out, int8,
                          read_video_list(eval_list, prefix,
                                          args.int8_eval_videos))
    report.update(int8_file=int8, eval_list=eval_list, calib_list=args.calib,
                  calib_videos=len(calib))
    with open(osp.splitext(out)[0] + '.int8.json', 'w') as f:
        json.dump(report, f, indent=1)
    line = (f"INT8 vs float on {report['videos']} videos of {eval_list}: "
            f"top-1 {report['top1_int8']:.1f}% vs "
            f"{report['top1_float']:.1f}%, agreement "
            f"{report['agreement']:.1f}%, class probabilities differ by "
            f"{report['mean_prob_diff']:.4f} on average (max "
            f"{report['max_prob_diff']:.4f}); file "
            f"{report['int8_bytes'] / report['float_bytes']:.2f}x the float "
            'one')
    if 'hallu_cosine_mean' in report:
        line += (f"; hallucination cosine {report['hallu_cosine_mean']:.4f}"
                 f" (min {report['hallu_cosine_min']:.4f})")
    print(line)
    return report


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    deploy, out = export_onnx(cfg, args.checkpoint, args.out,
                              args.with_hallu, args.student_size,
                              args.opset)
    print(f'exported {out}')
    report = {}
    if args.int8:
        report['int8'] = int8_export(cfg, args, out)
    if not args.verify:
        return report
    try:
        verified = verify_export(
            cfg, deploy, out, args.video,
            dict(scores=args.atol_scores, hallu=args.atol_hallu))
    except AssertionError as e:
        print(f'verification FAILED: {e}', file=sys.stderr)
        sys.exit(1)
    report.update(verified)
    for name, res in verified.items():
        diffs = ', '.join(f'{k} {v:.3g}' for k, v in res.items()
                          if k != 'shape')
        print(f'{name} {tuple(res["shape"])}: max abs diff {diffs}')
    print(f'verification passed (tolerance: scores {args.atol_scores}, '
          f'hallu {args.atol_hallu})')
    return report


if __name__ == '__main__':
    main()
