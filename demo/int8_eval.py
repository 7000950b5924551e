"""The demo's INT8 stage: each HalluciNet row's checkpoints (every seed)
exported to ONNX, statically quantised to INT8 (calibrated on training
videos) and compared with the float export on the validation videos; no
retraining. See docs/user_guides/deployment.md, INT8."""
import os.path as osp
from typing import Callable, Dict, List, Sequence

from mmengine.config import Config

from hallucinet_plugin.deploy.onnx_export import export_onnx
from hallucinet_plugin.deploy.quantize import (
    calibration_frames,
    compare_int8,
    quantize_int8,
    read_video_list,
)
from hallucinet_plugin.utils import seed_summary

# Calibration videos per checkpoint: the first of the training list.
CALIB_VIDEOS = 32


def int8_rows(runs: Dict[str, List[Dict]], config_of: Callable[[str], str],
              names: Sequence[str], data_root: str, work_dir: str,
              log: Callable = print) -> Dict[str, Dict]:
    """``name -> {top1_int8, top1_float, agreement}`` (seed summaries) and
    the per-seed comparisons, for each HalluciNet row among ``names``.

    Args:
        runs (dict): The trained students (``checkpoint`` per seed).
        config_of (callable): A model's config file.
        names (Sequence[str]): The rows to quantise.
        data_root (str): The demo dataset (its train and val lists).
        work_dir (str): Where the ONNX files go (``<row>/seed<k>/``).
    """
    videos = osp.join(data_root, 'videos')
    calib = read_video_list(
        osp.join(data_root, 'train_list.txt'), videos, CALIB_VIDEOS)
    val = read_video_list(osp.join(data_root, 'val_list.txt'), videos)
    out = {}
    for name in names:
        cfg = Config.fromfile(config_of(name))
        frames = calibration_frames(cfg, calib)
        reports = []
        for seed, run in enumerate(runs[name]):
            log(f'INT8: {name} seed {seed}: export, quantise, compare on '
                f'{len(val)} val videos')
            base = osp.join(work_dir, name, f'seed{seed}', 'student')
            _, float_file = export_onnx(cfg, run['checkpoint'],
                                        base + '.onnx', with_hallu=True)
            int8_file = quantize_int8(float_file, base + '.int8.onnx',
                                      frames)
            reports.append(compare_int8(cfg, float_file, int8_file, val))
        out[name] = dict(
            {key: seed_summary([r[key] for r in reports])
             for key in ('top1_int8', 'top1_float', 'agreement')},
            seeds=reports)
    return out
