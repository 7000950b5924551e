"""Extract TV-L1 optical flow into mmaction2's rawframe layout.

Examples::

    # from an mmaction2 video list (``<path> <label>`` lines)
    python tools/extract_flow.py data/ucf101/ucf101_train_split_1_videos.txt \
        --data-prefix data/ucf101/videos --out data/ucf101/rawframes \
        --out-list data/ucf101/ucf101_train_split_1_flow.txt --workers 8

    # every video under a folder, resized to a 256-pixel short side
    python tools/extract_flow.py videos/ --out rawframes --new-short 256

Read the result with ``RawframeDataset(ann_file=<out-list>,
data_prefix=dict(img=<out>), filename_tmpl='flow_{}_{:05d}.jpg',
modality='Flow')``. See ``hallucinet_plugin/converters/flow.py`` for the
quantisation and frame-count conventions.
"""
import argparse

from hallucinet_plugin.converters import extract_flow
from hallucinet_plugin.converters.flow import FLOW_METHODS
from hallucinet_plugin.datasets.transforms.load_flow_clips import (
    FLOW_TMPL,
    RGB_TMPL,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract optical flow (TV-L1 by default) as '
        'flow_x/flow_y JPEGs for mmaction2 RawframeDataset.')
    parser.add_argument(
        'input',
        help='an mmaction2 video annotation file (see --data-prefix) or a '
        'folder searched recursively for videos')
    parser.add_argument(
        '--data-prefix',
        default='',
        help='folder the paths in the annotation file are relative to')
    parser.add_argument(
        '--out', required=True, help='root folder of per-video outputs')
    parser.add_argument(
        '--workers', type=int, default=1, help='parallel worker processes')
    parser.add_argument(
        '--bound',
        type=float,
        default=20.,
        help='flow in [-bound, bound] pixels is mapped to [0, 255]')
    parser.add_argument(
        '--new-short',
        type=int,
        default=None,
        help='resize frames to this short side before computing flow')
    parser.add_argument(
        '--also-rgb',
        action='store_true',
        help=f'also write RGB frames as {RGB_TMPL}')
    parser.add_argument(
        '--out-list',
        default=None,
        help='write a RawframeDataset annotation file '
        '"<frame_dir> <total_frames> [label]" (total_frames = flow count)')
    parser.add_argument(
        '--method',
        choices=FLOW_METHODS,
        default='tvl1',
        help='flow algorithm')
    parser.add_argument(
        '--flow-tmpl',
        default=FLOW_TMPL,
        help='flow file name template, formatted with x/y and the index')
    parser.add_argument(
        '--rgb-tmpl', default=RGB_TMPL, help='RGB file name template')
    parser.add_argument(
        '--jpeg-quality', type=int, default=95, help='JPEG quality 0-100')
    parser.add_argument(
        '--skip-bad',
        action='store_true',
        help='warn about and leave out missing/corrupt videos instead of '
        'stopping at the first one')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    summary = extract_flow(
        args.input,
        args.out,
        data_prefix=args.data_prefix,
        workers=args.workers,
        bound=args.bound,
        new_short=args.new_short,
        also_rgb=args.also_rgb,
        method=args.method,
        flow_tmpl=args.flow_tmpl,
        rgb_tmpl=args.rgb_tmpl,
        jpeg_quality=args.jpeg_quality,
        skip_bad=args.skip_bad,
        out_list=args.out_list,
        progress=not args.no_progress)
    print(f'{summary["num_videos"]} videos: {summary["processed"]} '
          f'extracted, {summary["skipped"]} already done, '
          f'{len(summary["failed"])} failed.')


if __name__ == '__main__':
    main()
