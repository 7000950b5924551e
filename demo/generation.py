"""What the two demo dataset generators (:mod:`demo.demo_data`,
:mod:`demo.dive_demo_data`) share: colours and textures, the mp4 writer,
the process pool, atomic text files and argument checks."""
import os
import os.path as osp
import shutil
from multiprocessing import Pool
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.utils import track_parallel_progress, track_progress


def hsv_to_rgb(hue: float, sat: float, val: float) -> Tuple[int, ...]:
    """An RGB colour (0-255 ints) from HSV components in ``[0, 1]``."""
    hsv = np.array([[[hue * 180.0, sat * 255.0, val * 255.0]]], np.float32)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(int(c) for c in rgb)


def periodic_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth texture that tiles seamlessly, so shifting the camera on the
    torus never shows a seam.

    Returns:
        np.ndarray: Float texture in roughly ``[-1, 1]``, shape
        ``(size, size, 3)``.
    """
    freqs = np.fft.fftfreq(size) * size
    radius = np.hypot(freqs[:, None], freqs[None, :])
    # Only the lowest few spatial frequencies: blobs, not pixel noise.
    envelope = np.where((radius > 0) & (radius <= 4), 1.0 / (radius + 1), 0.)
    channels = []
    for _ in range(3):
        spectrum = envelope * (
            rng.standard_normal((size, size)) +
            1j * rng.standard_normal((size, size)))
        channels.append(np.fft.ifft2(spectrum).real)
    texture = np.stack(channels, axis=-1)
    return texture / (np.abs(texture).max() + 1e-8)


def write_video(path: str, frames: np.ndarray, fps: int) -> None:
    """Encode RGB ``frames`` of shape ``(T, H, W, 3)`` as MPEG-4 part 2."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open an mp4v writer for {path}')
    try:
        # OpenCV wants BGR; one copy for the whole clip, not one per frame.
        for frame in np.ascontiguousarray(frames[..., ::-1]):
            writer.write(frame)
    finally:
        writer.release()


def _init_worker() -> None:
    # One OpenCV thread per worker: the pool already uses every core.
    cv2.setNumThreads(1)


def run_tasks(fn: Callable, tasks: Sequence, workers: int,
              progress: bool = False) -> List:
    """``fn`` over ``tasks`` in order, in ``workers`` processes (one
    OpenCV thread each), with mmengine's progress bar if ``progress``: the
    one process pool of both demo generators."""
    workers = min(workers, len(tasks))
    if workers <= 1:
        _init_worker()
        if progress:
            return track_progress(fn, tasks)
        return [fn(task) for task in tasks]
    if progress:
        return track_parallel_progress(
            fn, tasks, workers, initializer=_init_worker, chunksize=4)
    with Pool(workers, initializer=_init_worker) as pool:
        return pool.map(fn, tasks, chunksize=4)


def write_text(path: str, text: str) -> None:
    """Write via a temporary file and rename, so no reader sees half."""
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


def check_positive(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an int, got {value!r}')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def remove_paths(paths: Sequence[str]) -> None:
    """Remove the files and folders among ``paths`` that exist."""
    for path in paths:
        if osp.isdir(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)
