"""Convert the official UCF101 / HMDB51 split lists to mmaction2 lists.

Examples::

    python tools/convert_split_list.py ucf101 data/ucf101/ucfTrainTestlist \
        --out-dir data/ucf101 --check-videos data/ucf101/videos

    python tools/convert_split_list.py hmdb51 \
        data/hmdb51/testTrainMulti_7030_splits --out-dir data/hmdb51 \
        --check-videos data/hmdb51/videos

writes ``{dataset}_train_split_{k}_videos.txt`` and
``{dataset}_val_split_{k}_videos.txt`` (``relative/path.avi label``,
0-based labels) for each split ``k``. See
``hallucinet_plugin/converters/split_lists.py`` for the formats read.
"""
import argparse
import sys

from hallucinet_plugin.converters.split_lists import (
    DATASETS,
    SPLITS,
    convert_split_lists,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert the official UCF101 or HMDB51 split lists '
        'into mmaction2 video lists.')
    parser.add_argument('dataset', choices=DATASETS)
    parser.add_argument(
        'ann_dir',
        help='ucfTrainTestlist (UCF101: classInd.txt, trainlist0k.txt, '
        'testlist0k.txt) or testTrainMulti_7030_splits (HMDB51)')
    parser.add_argument(
        '--out-dir', required=True, help='where the lists are written')
    parser.add_argument(
        '--splits',
        type=int,
        nargs='+',
        default=list(SPLITS),
        choices=SPLITS,
        help='splits to convert (default: all three)')
    parser.add_argument(
        '--check-videos',
        metavar='DIR',
        help='fail unless every listed video exists under DIR')
    parser.add_argument(
        '--class-index',
        help='classInd.txt-style file ("<1-based id> <class>") fixing the '
        'labels; default: ANN_DIR/classInd.txt for UCF101, the sorted '
        'class names for HMDB51')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = convert_split_lists(
            args.dataset,
            args.ann_dir,
            args.out_dir,
            splits=args.splits,
            video_root=args.check_videos,
            class_index=args.class_index)
    except (OSError, ValueError) as err:
        print(f'convert_split_list: error: {err}', file=sys.stderr)
        return 1
    print(f'{args.dataset}: {len(result["classes"])} classes')
    for (split, part), (path, count) in sorted(result['files'].items()):
        print(f'split {split} {part}: {count} videos -> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
