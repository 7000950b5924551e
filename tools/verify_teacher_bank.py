"""Check every entry of a teacher feature bank: each entry's header (its
checksum, the video it belongs to, the store's teacher), every row's
checksum, and values finite and within the largest magnitude the teacher
gave at extraction. Training checks the same, but only for the rows it
reads; run this after copying a store, or when a read reported damage.

Example::

    python tools/verify_teacher_bank.py work_dirs/demo/teacher_bank.lmdb
"""
import argparse
import sys

from hallucinet_plugin.feature_bank import FeatureBank


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('store', help='the feature bank folder')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    args = parser.parse_args(argv)
    bank = FeatureBank(args.store)
    try:
        count = bank.verify(progress=not args.no_progress)
    except (ValueError, KeyError, FileNotFoundError) as e:
        sys.exit(f'DAMAGED: {e}')
    meta = bank.meta
    state = 'complete' if meta.get('complete') else 'incomplete'
    print(f'{args.store}: {count} videos checked, every row intact '
          f'({meta.get("dim")}-d {meta["dtype"]}, largest magnitude '
          f'{meta.get("max_abs")}); {state}')


if __name__ == '__main__':
    main()
