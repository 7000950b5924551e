"""Shared fixtures: small real mp4 videos and config helpers."""
import contextlib
import functools
import http.server
import json
import os
import os.path as osp
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from filelock import FileLock

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # Two pytest workers on two cores: one thread each, also for the tools
    # the tests start as subprocesses.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)

NUM_CLASSES = 4
# The width of tiny_teacher()'s pooled output.
TINY_TEACHER_DIM = 64


def tiny_teacher(num_classes: int = NUM_CLASSES) -> dict:
    """The 3D teacher the tests share: mmaction2's ``Recognizer3D`` with a
    ResNet3d-18 at 1/8 width (64-d features) that keeps the time axis in
    its stem, so 8- or 16-frame clips of 24-32 px pass through."""
    return dict(
        type='Recognizer3D',
        backbone=dict(
            type='ResNet3d',
            depth=18,
            base_channels=8,
            pretrained=None,
            pretrained2d=False,
            conv1_stride_t=1,
            pool1_stride_t=1),
        cls_head=dict(
            type='I3DHead',
            num_classes=num_classes,
            in_channels=TINY_TEACHER_DIM))


def frozen_tiny_teacher(num_classes: int = NUM_CLASSES, **kwargs) -> dict:
    """``model.teacher`` of a HalluciNet config: :func:`tiny_teacher` as a
    ``FrozenTeacher`` (``kwargs``: its ``checkpoint``, ``layer`` ...)."""
    return dict(type='FrozenTeacher', model=tiny_teacher(num_classes),
                **kwargs)


def write_video(path: str, frames: np.ndarray, fps: int = 25) -> None:
    """Write ``(T, H, W, 3)`` uint8 RGB frames as an MPEG-4 mp4."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cannot open a video writer for {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def moving_square_video(label: int, num_frames: int, size: int,
                        rng: np.random.Generator) -> np.ndarray:
    """A bright square moving in one of four directions (the label)."""
    frames = rng.integers(0, 60, (num_frames, size, size, 3), np.uint8)
    dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][label]
    y, x = rng.integers(size // 4, 3 * size // 4, 2)
    for t in range(num_frames):
        cy, cx = (y + dy * t) % size, (x + dx * t) % size
        frames[t, max(cy - 4, 0):cy + 4, max(cx - 4, 0):cx + 4] = 230
    return frames


def make_video_dataset(root: str,
                       num_videos: int = 8,
                       num_frames: int = 24,
                       size: int = 32,
                       seed: int = 0) -> dict:
    """Videos under ``root/videos`` and an mmaction2 list ``root/list.txt``.
    """
    rng = np.random.default_rng(seed)
    video_dir = osp.join(root, 'videos')
    os.makedirs(video_dir, exist_ok=True)
    lines = []
    for i in range(num_videos):
        label = i % NUM_CLASSES
        name = f'video_{i:03d}.mp4'
        write_video(
            osp.join(video_dir, name),
            moving_square_video(label, num_frames, size, rng))
        lines.append(f'{name} {label}')
    ann_file = osp.join(root, 'list.txt')
    with open(ann_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(
        root=root,
        video_dir=video_dir,
        ann_file=ann_file,
        num_videos=num_videos,
        num_frames=num_frames,
        size=size)


@pytest.fixture(scope='session')
def video_dataset(tmp_path_factory) -> dict:
    """Eight 24-frame 32x32 mp4 videos of four classes."""
    return make_video_dataset(str(tmp_path_factory.mktemp('videos')))


@pytest.fixture(scope='session')
def bank_setup(tmp_path_factory) -> dict:
    """A tiny teacher's feature stores, extracted once per test session
    from real videos (:func:`tests.feature_bank.bank_utils.extract_setup`)
    and shared by pytest-xdist's workers: the online config (``cfg``), its
    ``data``, teacher checkpoint (``ckpt``) and ``stores['exact']``
    (stride 1, float32) and ``stores['default']``. Read-only: a test that
    changes a store copies it first."""
    from tests.feature_bank.bank_utils import extract_setup
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        # This session's folder, which holds every worker's.
        root = root.parent
    root = root / 'bank_setup'
    with FileLock(str(root) + '.lock'):
        done = root / 'setup.json'
        if not done.is_file():
            root.mkdir()
            done.write_text(json.dumps(extract_setup(root)))
        return json.loads(done.read_text())


def run_tool(*args: str, cwd: str = REPO, timeout: int = 600,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` as a real subprocess."""
    proc = subprocess.run([sys.executable, *args],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@contextlib.contextmanager
def serve_directory(root: str):
    """A real HTTP server on 127.0.0.1 serving ``root``; yields its base
    URL and counts the requests it answers (``server.requests``)."""

    class Handler(http.server.SimpleHTTPRequestHandler):

        def log_message(self, *args):
            pass

        def do_GET(self):
            server.requests += 1
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
