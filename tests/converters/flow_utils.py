"""Videos of known motion for the optical-flow tests, and reading their
flow back."""
from pathlib import Path

import cv2
import numpy as np

from hallucinet_plugin.converters.flow import dequantize_flow

# decord 0.6 returns mis-shaped frames for 48x48 videos, so not square.
HEIGHT, WIDTH, NUM_FRAMES = 48, 64, 8
# Per-frame motion (dx, dy) of each generated video's content.
MOTIONS = {'right_up': (2, -1), 'left_down': (-1, 2)}
FLOW_TMPL = 'flow_{}_{:05d}.jpg'
MARGIN = 10  # interior border left out where content enters the frame


def translating_frames(dx: int, dy: int, seed: int = 0) -> np.ndarray:
    """(NUM_FRAMES, H, W, 3) uint8 RGB of a texture moving (dx, dy)/frame."""
    rng = np.random.default_rng(seed)
    pad = 3 * NUM_FRAMES
    canvas = rng.random((HEIGHT + 2 * pad, WIDTH + 2 * pad, 3)) * 255
    # Smooth texture: codecs keep it and flow is well defined on it.
    canvas = cv2.GaussianBlur(canvas.astype(np.uint8), (0, 0), 1.5)
    frames = []
    for i in range(NUM_FRAMES):
        y0, x0 = pad - dy * i, pad - dx * i
        frames.append(canvas[y0:y0 + HEIGHT, x0:x0 + WIDTH])
    return np.stack(frames)


def _write_video(path: Path, frames: np.ndarray) -> None:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'mp4v'), 25, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def read_flow(frame_dir: Path, index: int, bound: float = 20.):
    """Decode pair ``index`` back to an (H, W, 2) float flow."""
    x = cv2.imread(str(frame_dir / FLOW_TMPL.format('x', index)), 0)
    y = cv2.imread(str(frame_dir / FLOW_TMPL.format('y', index)), 0)
    return dequantize_flow(np.stack([x, y], axis=-1), bound)


def interior_mean(flow: np.ndarray) -> np.ndarray:
    return flow[..., MARGIN:-MARGIN, MARGIN:-MARGIN, :].reshape(
        -1, 2).mean(0)


def write_flow_videos(root: Path) -> Path:
    """One mp4 per :data:`MOTIONS` entry under ``root``."""
    for seed, (name, (dx, dy)) in enumerate(MOTIONS.items()):
        _write_video(root / f'{name}.mp4', translating_frames(dx, dy, seed))
    return root
