"""Train a recognizer; the same command line as mmaction2's tools/train.py.

Example::

    python tools/train.py configs/hallucinet_vgg11_ucf.py
"""
import os.path as osp
import sys

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from hallucinet_plugin.apis.runner import train

if __name__ == '__main__':
    train()
