"""MoNet's feature-level experiments on the demo videos: sequence models
(its Table 1) and classifiers (its Table 3), appearance alone vs
hallucinated vs real two-stream, over seeds with confidence intervals.

Reuses the main demo's teacher and vanilla student (work_dirs/demo) when
they exist, trains them otherwise. CPU only, no download.

Examples::

    python tools/monet_feature_demo.py            # 5 seeds, both tables
    python tools/monet_feature_demo.py --quick    # smoke run
    python tools/monet_feature_demo.py --units monet gru --classifiers linear
"""
import os.path as osp
import sys

# The demo lives in the checkout's demo/, next to tools/.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from demo.monet_feature_demo import main  # noqa: E402

if __name__ == '__main__':
    main()
