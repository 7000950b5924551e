"""The main job: the HalluciNet demo on the embedded demo dataset.

Generates the dataset if missing, trains the 3D teacher, extracts its
feature bank, trains vanilla and HalluciNet students over several seeds,
tests them and prints a results table (also written as Markdown, JSON and
PNG curves into the work directory). CPU only, no download.

Examples::

    python tools/demo.py                 # the full demo, 3 seeds
    python tools/demo.py --quick         # a smoke run in a minute or two
    python tools/demo.py --seeds 1 --models vanilla hallucinet
"""
import os.path as osp
import sys

# The demo lives in the checkout's demo/, next to tools/.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from demo.hallucinet_demo import main  # noqa: E402

if __name__ == '__main__':
    main()
