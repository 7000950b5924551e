"""Top-k classes of a video, a directory of frames or an image.

Examples::

    python tools/inference.py CONFIG work_dirs/x/best.pth video.mp4
    python tools/inference.py CONFIG best.pth frames_dir/ img.jpg --topk 3 \
        --label-map label_map.txt --save-hallu hallu.npy
    # the exported model in onnxruntime (CHECKPOINT: none)
    python tools/inference.py CONFIG none video.mp4 --onnx student.onnx

Frames are sampled and transformed by the config's test pipeline, and the
scores are those ``tools/test.py`` reports (``HalluciNet.predict_scores``);
see ``hallucinet_plugin/deploy/inference.py``. ``--save-hallu`` writes the
hallucinated representation: ``(S, D)`` for one input, ``(N, S, D)`` for
``N`` inputs.
"""
import argparse

import numpy as np
from mmengine.config import DictAction

from hallucinet_plugin.deploy.inference import inference
from hallucinet_plugin.utils.config import load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Predict the top-k classes of videos, frame '
        'directories or images with a HalluciNet student (PyTorch '
        'checkpoint or exported ONNX file).')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint',
        help='student checkpoint; "none" for random weights or with --onnx')
    parser.add_argument(
        'inputs',
        nargs='+',
        metavar='INPUT',
        help='video file, directory of frames or image')
    parser.add_argument('--topk', type=int, default=5, help='classes shown')
    parser.add_argument(
        '--label-map',
        help='class names, one per line (default: the config\'s label_map, '
        'else indices)')
    parser.add_argument(
        '--save-hallu',
        metavar='FILE.npy',
        help='save the hallucinated representation')
    parser.add_argument(
        '--onnx', metavar='FILE', help='run this exported model instead')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    if args.save_hallu and not args.save_hallu.endswith('.npy'):
        raise SystemExit(f'--save-hallu must end with .npy, got '
                         f'{args.save_hallu}')
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    cfg = load_config(args.config, args.cfg_options)
    results = inference(
        cfg,
        args.inputs,
        checkpoint=checkpoint,
        onnx_file=args.onnx,
        k=args.topk,
        label_map=args.label_map,
        with_hallu=bool(args.save_hallu))
    for res in results:
        shape = 'x'.join(str(s) for s in res['frames'])
        print(f'{res["input"]} ({res["kind"]}, frames {shape}, '
              f'{res["backend"]}):')
        for item in res['topk']:
            print(f'  {item["rank"]}. {item["name"]} (class {item["index"]})'
                  f': {item["score"]:.4f}')
    if args.save_hallu:
        hallu = [res['hallu'] for res in results]
        hallu = hallu[0] if len(hallu) == 1 else np.stack(hallu)
        np.save(args.save_hallu, hallu)
        print(f'saved the hallucinated representation {hallu.shape} to '
              f'{args.save_hallu}')
    return results


if __name__ == '__main__':
    main()
