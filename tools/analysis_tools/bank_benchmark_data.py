"""The feature bank's speed for any pair of configs, on generated videos
(``tools/benchmark.py --training VANILLA HALLUCINET --generated N``).

The bank's targets are about compute: does training from stored targets
run at the vanilla student's speed, does extraction keep the teacher busy?
Measured with the demo's 4-ms teacher on 2 cores, decoding hides the
answer; measured with the paper's configs, it needs UCF101 and Hara's
checkpoint. This prepares what the measurement needs instead, with no
download: ``N`` short videos from the demo's generator
(``python -m demo data``, run as the user would) at a chosen size,
both configs' training data pointed at them, a teacher checkpoint of
random weights (timing does not depend on the weights) when the config's
own does not exist, students without pretrained weights (no download), and
the bank of that teacher over the videos.
"""
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, Tuple

import torch
from mmengine.config import Config

from hallucinet_plugin.deploy.spec import without_pretrained
from hallucinet_plugin.feature_bank import extract_teacher_features
from hallucinet_plugin.models.teachers import build_teacher

# The checkout whose demo generator (``python -m demo data``) makes them.
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def generate_videos(data_root: str, num_videos: int, num_frames: int,
                    size: int) -> None:
    """``num_videos`` videos in the ``train`` split of a demo dataset at
    ``data_root`` (one in each other split), made by
    ``python -m demo data`` in a subprocess."""
    cmd = [
        sys.executable, '-m', 'demo', 'data', data_root,
        '--num-teacher-videos', '1',
        '--num-train-videos',
        str(num_videos), '--num-val-videos', '1', '--num-frames',
        str(num_frames), '--size',
        str(size), '--overwrite', '--no-progress'
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=CHECKOUT)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}):\n'
                           f'{proc.stdout[-2000:]}{proc.stderr[-3000:]}')


def point_train_data(cfg: Config, data_root: str) -> None:
    """Point ``cfg``'s training dataset at the generated ``train`` split;
    validation and test are not used by the measurement."""
    dataset = cfg.train_dataloader.dataset
    dataset.ann_file = osp.join(data_root, 'train_list.txt')
    dataset.data_prefix = dict(video=osp.join(data_root, 'videos'))


def random_teacher_checkpoint(cfg: Config, path: str) -> str:
    """Save the weights of ``cfg.model.teacher.model`` as built (random) to
    ``path``, as a plain ``state_dict`` checkpoint."""
    torch.manual_seed(0)
    teacher = build_teacher(cfg.model.teacher.model)
    if hasattr(teacher, 'init_weights'):
        teacher.init_weights()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path


def prepare_generated(vanilla: Config,
                      online: Config,
                      work_dir: str,
                      num_videos: int = 24,
                      num_frames: int = 32,
                      size: int = 240,
                      log: Callable[[str], None] = print
                      ) -> Tuple[Config, Config, str, Dict]:
    """Videos, teacher checkpoint and bank for :func:`bank_benchmark`.

    Args:
        vanilla (Config): The vanilla student's config (edited in place).
        online (Config): The HalluciNet config with its online teacher
            (edited in place).
        work_dir (str): Where the videos, checkpoint and bank go (reused
            when made with the same settings).
        num_videos (int): Videos in the training split.
        num_frames (int): Frames per video.
        size (int): Frame height and width.
        log (Callable): Progress messages.

    Returns:
        tuple: ``vanilla``, ``online``, the bank's path and what was made
        (``videos``, ``frames``, ``size``, ``teacher_ckpt``, ``random``).
    """
    data_root = osp.join(work_dir, 'data')
    log(f'generated videos: {num_videos} x {num_frames} frames of '
        f'{size}x{size} in {data_root}')
    generate_videos(data_root, num_videos, num_frames, size)
    for cfg in (vanilla, online):
        point_train_data(cfg, data_root)
        # Timing does not depend on the weights: nothing is downloaded.
        cfg.model = without_pretrained(cfg.model)
    ckpt = online.model.teacher.get('checkpoint')
    random_weights = not (ckpt and osp.isfile(ckpt))
    if random_weights:
        ckpt = osp.join(work_dir, 'random_teacher.pth')
        if not osp.isfile(ckpt):
            log(f'teacher checkpoint of random weights: {ckpt}')
            random_teacher_checkpoint(online, ckpt)
        online.model.teacher.checkpoint = ckpt
    store = osp.join(work_dir, 'teacher_bank.lmdb')
    log(f'feature bank of the teacher over the videos: {store}')
    # Resumable: an existing bank of the same teacher and videos is kept;
    # one of other settings is refused by name (remove the work dir).
    extract_teacher_features(online, store, splits=('train', ))
    made = dict(videos=num_videos, frames=num_frames, size=size,
                teacher_ckpt=ckpt, random=random_weights)
    return vanilla, online, store, made
