"""Test a recognizer; the same command line as mmaction2's tools/test.py.

Example::

    python tools/test.py configs/hallucinet_vgg11_ucf.py CKPT
"""
import os.path as osp
import sys

# Run from a source checkout without installing.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from hallucinet_plugin.apis.runner import test

if __name__ == '__main__':
    test()
