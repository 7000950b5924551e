"""``python -m demo data OUT_DIR``: the synthetic demo dataset alone
(videos, mmaction2 lists, label map; :mod:`demo.demo_data`).

Example::

    python -m demo data data/demo --seed 0
"""
import argparse
import os.path as osp
import time
from typing import List, Optional

from demo.demo_data import generate_demo_dataset


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m demo data',
        description='Generate the synthetic HalluciNet demo dataset')
    parser.add_argument('out_dir', help='directory to write the dataset to')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--num-teacher-videos',
        type=int,
        default=1600,
        help='videos in teacher_train (3D teacher pretraining)')
    parser.add_argument(
        '--num-train-videos',
        type=int,
        default=240,
        help='videos in train (the students\' labelled set)')
    parser.add_argument(
        '--num-val-videos', type=int, default=240, help='videos in val')
    parser.add_argument(
        '--num-frames', type=int, default=32, help='frames per video')
    parser.add_argument(
        '--size', type=int, default=64, help='frame height and width')
    parser.add_argument(
        '--workers',
        type=int,
        default=None,
        help='worker processes (default: number of CPUs)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a dataset generated with other parameters')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    meta = generate_demo_dataset(
        args.out_dir,
        seed=args.seed,
        num_teacher_videos=args.num_teacher_videos,
        num_train_videos=args.num_train_videos,
        num_val_videos=args.num_val_videos,
        num_frames=args.num_frames,
        size=args.size,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    root = osp.abspath(args.out_dir)
    if meta['generated']:
        print(f'Generated the demo dataset in {root} ({elapsed:.1f} s):')
    else:
        print(f'Demo dataset already in {root} with the same parameters; '
              'nothing written:')
    for split, info in meta['splits'].items():
        print(f'  {split}: {info["num_videos"]} videos in '
              f'{osp.join(root, "videos", split)}, list '
              f'{osp.join(root, info["list_file"])}')
    print(f'  classes: {len(meta["classes"])} in '
          f'{osp.join(root, "label_map.txt")}')
    print(f'  metadata: {osp.join(root, "meta.json")}')


if __name__ == '__main__':
    main()
