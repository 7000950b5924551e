"""The long-term job: sparse-frame LSTM students with and without
hallucination on the generated diving demo (MTL-AQA's released layout).

Generates the dataset if missing, trains the tiny 3D teacher on motion
clips, trains and tests the vanilla and HalluciNet students over several
seeds and prints per-property accuracy and Spearman's rank correlation (also
written as Markdown and JSON into the work directory). CPU only, no
download.

Examples::

    python tools/dive_demo.py            # the demo, 2 seeds
    python tools/dive_demo.py --quick    # a smoke run
    python tools/dive_demo.py --seeds 1 --models hallucinet
"""
import os.path as osp
import sys

# The demo lives in the checkout's demo/, next to tools/.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from demo.dive_demo import main  # noqa: E402

if __name__ == '__main__':
    main()
