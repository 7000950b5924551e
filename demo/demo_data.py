"""A synthetic action-recognition dataset that the demo generates itself.

Each video shows a dart-shaped sprite gliding over a textured, cluttered,
noisy background seen through a shaking camera. The class is *how the sprite
moves*: one of four directions times two speeds. What a single frame shows
only hints at that: the sprite's nose points along its direction of motion in
``pose_agreement`` of the videos and elsewhere otherwise, and nothing in one
frame tells the speed. So a 2D-CNN that sees one frame is capped at
``pose_agreement / 2`` top-1, while a 3D-CNN that sees a 16-frame clip can
read both direction and speed -- the gap HalluciNet's student tries to close
by hallucinating the 3D teacher's features.

The world is a torus: the sprite and the clutter leave one border and come
back at the opposite one, so the motion, and the class, hold in every clip of
every length starting at any frame.

The on-disk layout is the one mmaction2 users have::

    out_dir/
        videos/{teacher_train,train,val}/<split>_<index>.mp4
        {teacher_train,train,val}_list.txt  # 'teacher_train/x.mp4 3' lines
        label_map.txt                       # one class name per line
        meta.json                           # written last: marks completion

Every video is drawn from its own generator seeded with
``(seed, split id, index)``, so the data depend on the seed only, not on the
number of workers or the order in which they finish.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from demo.generation import (
    check_positive,
    hsv_to_rgb,
    periodic_texture,
    remove_paths,
    run_tasks,
    write_text,
    write_video,
)

# Bump whenever a change alters the generated pixels or annotations, so an old
# dataset on disk is reported as different instead of silently reused.
GENERATOR_VERSION = 2

SPLITS = ('teacher_train', 'train', 'val')
DIRECTIONS = ('right', 'up', 'left', 'down')
SPEEDS = ('slow', 'fast')
CLASSES = tuple(f'move_{d}_{s}' for d in DIRECTIONS for s in SPEEDS)

# Motion and sprite geometry in pixels (per frame) of a 64-pixel frame;
# other sizes scale them. The speed ranges do not overlap, so the speed is
# always readable from motion, and fast stays below the sprite length so
# consecutive frames overlap (no temporal aliasing).
_REF_SIZE = 64
_SLOW_SPEED = (1.0, 1.6)
_FAST_SPEED = (2.6, 3.6)
_DIRECTION_JITTER_DEG = 20.0
_SPRITE_LENGTH = (16.0, 20.0)
_OUTLINE = (0, 0, 0)
_NUM_CLUTTER = (3, 6)
_CLUTTER_SIZE = (3.0, 6.0)
_CLUTTER_SPEED = 0.3
_SHAKE_DECAY = 0.8
_SHAKE_STEP_STD = 0.5
_SHAKE_MAX = 2
_NOISE_AMPLITUDE = 6
# cv2 draws at sub-pixel precision with coordinates scaled by 2**_SHIFT.
_SHIFT = 4

_META_FILE = 'meta.json'
_LABEL_MAP_FILE = 'label_map.txt'
_VIDEO_DIR = 'videos'


def _list_file(split: str) -> str:
    return f'{split}_list.txt'


def _dart(length: float, angle: float) -> np.ndarray:
    """Outline of the sprite, nose along ``angle`` (radians, counterclockwise
    on screen), centred on the origin.

    Returns:
        np.ndarray: Polygon vertices ``(x, y)`` in pixels, shape ``(4, 2)``.
    """
    local = np.array([[0.6, 0.0], [-0.4, 0.4], [-0.15, 0.0], [-0.4, -0.4]])
    local = local * length
    cos, sin = np.cos(angle), np.sin(angle)
    # Screen y points down, so a counterclockwise angle negates y.
    return np.stack([
        local[:, 0] * cos + local[:, 1] * sin,
        local[:, 0] * -sin + local[:, 1] * cos
    ], axis=1)


def _prepare(polygon: np.ndarray) -> Tuple:
    """Fixed-point vertices and bounding box of a polygon centred on the
    origin, computed once so that drawing it in every frame is cheap."""
    pts = np.round(polygon * (1 << _SHIFT)).astype(np.int32)
    return (pts, *polygon.min(0).tolist(), *polygon.max(0).tolist())


def _fill_wrapped(img: np.ndarray,
                  shape: Tuple,
                  center: List[float],
                  color: Tuple[int, ...],
                  outline: Optional[Tuple[int, ...]] = None) -> None:
    """Fill a :func:`_prepare` d polygon at ``center`` ``(x, y)`` on the
    torus: the copies shifted by one frame size that touch the image are
    drawn too, so a shape straddling a border shows on both sides.
    ``outline``, if given, is the colour of a one-pixel border."""
    size = img.shape[0]
    pts, low_x, low_y, high_x, high_y = shape
    # Anti-aliasing reaches one pixel past the outline, hence the margins.
    x_shifts, y_shifts = [0], [0]
    for shifts, low, high in ((x_shifts, low_x + center[0], high_x +
                               center[0]), (y_shifts, low_y + center[1],
                                            high_y + center[1])):
        if low < 1:
            shifts.append(size)
        if high > size - 2:
            shifts.append(-size)
    offset_x = round(center[0] * (1 << _SHIFT))
    offset_y = round(center[1] * (1 << _SHIFT))
    for dy in y_shifts:
        for dx in x_shifts:
            shifted = [
                pts + np.int32([offset_x + (dx << _SHIFT),
                                offset_y + (dy << _SHIFT)])
            ]
            cv2.fillPoly(
                img, shifted, color, lineType=cv2.LINE_AA, shift=_SHIFT)
            if outline is not None:
                cv2.polylines(
                    img,
                    shifted,
                    True,
                    outline,
                    lineType=cv2.LINE_AA,
                    shift=_SHIFT)


def _circle(radius: float, num: int = 16) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, num, endpoint=False)
    return np.stack([np.cos(theta), np.sin(theta)], axis=1) * radius


def _clutter_shape(kind: int, size: float) -> List[np.ndarray]:
    """Polygons of a clutter object centred on the origin. The shapes are
    symmetric, so unlike the sprite they carry no orientation."""
    if kind == 0:
        return [_circle(size)]
    if kind == 1:
        half = size * 0.85
        return [np.array([[-half, -half], [half, -half], [half, half],
                          [-half, half]])]
    # A plus sign, as two bars.
    long, short = size, size * 0.35
    return [
        np.array([[-long, -short], [long, -short], [long, short],
                  [-long, short]]),
        np.array([[-short, -long], [short, -long], [short, long],
                  [-short, long]])
    ]


def render_video(rng: np.random.Generator,
                 label: int,
                 num_frames: int,
                 size: int,
                 pose_agreement: float,
                 distractors: bool = True) -> Tuple[np.ndarray, Dict]:
    """Draw one video of class ``label``.

    Args:
        rng (np.random.Generator): The video's own random generator.
        label (int): Class index into :data:`CLASSES`.
        num_frames (int): Number of frames T.
        size (int): Frame height and width S in pixels.
        pose_agreement (float): Probability that the sprite points along its
            direction of motion; otherwise it points along one of the three
            other directions, chosen uniformly.
        distractors (bool): Draw the background texture, clutter, camera
            shake, flicker and noise. Without them (for tests and figures)
            the sprite, identical to the one drawn with them, moves over a
            flat background.

    Returns:
        tuple[np.ndarray, dict]: RGB frames, uint8, shape ``(T, S, S, 3)``,
        and the video's latent factors: ``direction`` and ``pose`` (names
        from :data:`DIRECTIONS`), ``speed`` (pixels per frame), ``start`` and
        ``velocity`` (``(x, y)`` of the sprite centre in pixels at frame 0,
        and per frame).
    """
    scale = size / _REF_SIZE
    direction, speed_id = divmod(label, len(SPEEDS))
    speed_range = _SLOW_SPEED if speed_id == 0 else _FAST_SPEED
    speed = rng.uniform(*speed_range) * scale
    jitter = np.deg2rad(
        rng.uniform(-_DIRECTION_JITTER_DEG, _DIRECTION_JITTER_DEG))
    motion_angle = direction * np.pi / 2 + jitter
    if rng.random() < pose_agreement:
        pose, pose_angle = direction, motion_angle
    else:
        pose = int((direction + rng.integers(1, len(DIRECTIONS))) %
                   len(DIRECTIONS))
        pose_angle = pose * np.pi / 2 + np.deg2rad(
            rng.uniform(-_DIRECTION_JITTER_DEG, _DIRECTION_JITTER_DEG))
    # Screen y points down: moving 'up' decreases y.
    velocity = speed * np.array([np.cos(motion_angle), -np.sin(motion_angle)])
    start = rng.uniform(0, size, 2)
    sprite = _prepare(
        _dart(rng.uniform(*_SPRITE_LENGTH) * scale, pose_angle))
    # Vivid with a dark outline: the sprite is easy to find, so what one
    # frame tells is bounded by its pose, not by how hard it is to see.
    sprite_color = hsv_to_rgb(rng.random(), rng.uniform(0.7, 1.0),
                               rng.uniform(0.9, 1.0))

    # Muted, so the vivid sprite stands out; its texture and the clutter
    # still give a one-frame model plenty to overfit to.
    base = np.array(
        hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(
            0.3, 0.55)), np.float32)
    texture = periodic_texture(rng, size)
    background = np.clip(base + 35.0 * texture, 0, 255).astype(np.uint8)

    times = np.arange(num_frames)[:, None]
    clutter = []
    for _ in range(rng.integers(_NUM_CLUTTER[0], _NUM_CLUTTER[1] + 1)):
        angle = rng.uniform(0, 2 * np.pi)
        shapes = _clutter_shape(
            int(rng.integers(3)),
            rng.uniform(*_CLUTTER_SIZE) * scale)
        position = rng.uniform(0, size, 2)
        drift = rng.uniform(0, _CLUTTER_SPEED) * scale * np.array(
            [np.cos(angle), np.sin(angle)])
        color = hsv_to_rgb(rng.random(), rng.uniform(0.2, 1.0),
                            rng.uniform(0.2, 1.0))
        clutter.append(([_prepare(shape) for shape in shapes],
                        ((position + times * drift) % size).tolist(), color))
    sprite_centers = ((start + times * velocity) % size).tolist()

    # A smooth, mean-reverting (AR(1)) camera path: a hand-held wobble that
    # moves everything together, slower than the sprite.
    steps = rng.normal(0, _SHAKE_STEP_STD * scale, (num_frames, 2))
    path = np.empty_like(steps)
    path[0] = steps[0] / np.sqrt(1 - _SHAKE_DECAY**2)
    for t in range(1, num_frames):
        path[t] = _SHAKE_DECAY * path[t - 1] + steps[t]
    shake = np.clip(
        np.round(path), -_SHAKE_MAX * scale, _SHAKE_MAX * scale).astype(int)
    gain = rng.uniform(0.93, 1.07, (num_frames, 1, 1, 1)).astype(np.float32)
    # Uniform integer noise: as good a distractor as Gaussian noise, and
    # several times cheaper to draw.
    noise = rng.integers(
        -_NOISE_AMPLITUDE, _NOISE_AMPLITUDE + 1, (num_frames, size, size, 3),
        dtype=np.int8)

    if not distractors:
        background = np.broadcast_to(base.astype(np.uint8),
                                     background.shape).copy()
        clutter = []
        shake[:] = 0
        gain[:] = 1
        noise[:] = 0

    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        img = background.copy()
        for shapes, centers, color in clutter:
            for shape in shapes:
                _fill_wrapped(img, shape, centers[t], color)
        _fill_wrapped(img, sprite, sprite_centers[t], sprite_color, _OUTLINE)
        # Camera shake moves the whole torus world, background included.
        frames[t] = np.roll(img, (shake[t, 1], shake[t, 0]), axis=(0, 1))
    noisy = frames.astype(np.float32)
    noisy *= gain
    noisy += noise
    frames = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
    latents = dict(
        direction=DIRECTIONS[direction],
        pose=DIRECTIONS[pose],
        speed=float(speed),
        start=start.tolist(),
        velocity=velocity.tolist())
    return frames, latents


def _balanced_labels(seed: int, split_id: int, num_videos: int,
                     num_classes: int) -> np.ndarray:
    """Class of each video: equal counts (off by at most one when
    ``num_videos`` is not a multiple), in a seeded random order."""
    labels = np.arange(num_videos) % num_classes
    # A stream apart from the per-video ones, seeded (seed, split, index).
    rng = np.random.default_rng([seed, len(SPLITS) + split_id, num_videos])
    # Which classes get the remainder is random too, not always the first.
    class_order = rng.permutation(num_classes)
    return rng.permutation(class_order[labels])


def _make_video(task: Tuple) -> Tuple[str, int, Dict]:
    (out_dir, split, split_id, index, label, seed, num_frames, size, fps,
     pose_agreement) = task
    rng = np.random.default_rng([seed, split_id, index])
    frames, latents = render_video(rng, label, num_frames, size,
                                   pose_agreement)
    rel_path = f'{split}/{split}_{index:05d}.mp4'
    write_video(osp.join(out_dir, _VIDEO_DIR, rel_path), frames, fps)
    return rel_path, label, latents


def _owned_paths(out_dir: str) -> List[str]:
    """Every path the generator writes, so cleaning never touches others."""
    paths = [osp.join(out_dir, _VIDEO_DIR, split) for split in SPLITS]
    paths += [osp.join(out_dir, _list_file(split)) for split in SPLITS]
    paths += [
        osp.join(out_dir, name)
        for name in (_LABEL_MAP_FILE, _META_FILE, _META_FILE + '.tmp')
    ]
    return paths


def _remove_owned(out_dir: str) -> None:
    remove_paths(_owned_paths(out_dir))
    video_root = osp.join(out_dir, _VIDEO_DIR)
    if osp.isdir(video_root) and not os.listdir(video_root):
        os.rmdir(video_root)


def generate_demo_dataset(out_dir: str,
                          seed: int = 0,
                          num_teacher_videos: int = 1600,
                          num_train_videos: int = 240,
                          num_val_videos: int = 240,
                          num_frames: int = 32,
                          size: int = 64,
                          fps: int = 25,
                          pose_agreement: float = 0.9,
                          workers: Optional[int] = None,
                          overwrite: bool = False,
                          progress: bool = True) -> Dict:
    """Generate the demo dataset under ``out_dir``, or reuse it.

    If ``out_dir/meta.json`` records the same parameters, nothing is written.
    ``meta.json`` is written last, so a directory without it is an
    interrupted run: its files are removed and generated again. Only the
    generator's own paths are ever removed, never other files in
    ``out_dir``.

    Args:
        out_dir (str): Root directory of the dataset.
        seed (int): Seed; the data depend on it and the other parameters
            only, not on ``workers``.
        num_teacher_videos (int): Videos in ``teacher_train``, the 3D
            teacher's pretraining set.
        num_train_videos (int): Videos in ``train``, the students' labelled
            set.
        num_val_videos (int): Videos in ``val``.
        num_frames (int): Frames per video.
        size (int): Frame height and width in pixels.
        fps (int): Frame rate stored in the files.
        pose_agreement (float): Probability that the sprite points along its
            direction of motion, i.e. how much a single frame tells about the
            direction.
        workers (int, optional): Processes drawing and encoding videos.
            Defaults to the number of CPUs.
        overwrite (bool): Replace an existing dataset generated with other
            parameters instead of raising an error.
        progress (bool): Show a progress bar.

    Returns:
        dict: The content of ``meta.json``: ``params``, ``generator_version``,
        ``classes``, per-split ``num_videos`` / ``class_counts`` /
        ``pose_agreement_observed`` / ``list_file``, and
        ``single_frame_upper_bound`` (the best top-1 a model seeing one frame
        can expect). Only in the returned dict, ``generated`` is False when
        an existing dataset was reused.
    """
    check_positive('seed', seed, minimum=0)
    check_positive('num_teacher_videos', num_teacher_videos)
    check_positive('num_train_videos', num_train_videos)
    check_positive('num_val_videos', num_val_videos)
    check_positive('num_frames', num_frames)
    check_positive('size', size, minimum=16)
    check_positive('fps', fps)
    if not 0.0 <= pose_agreement <= 1.0:
        raise ValueError(
            f'pose_agreement must be in [0, 1], got {pose_agreement}')
    if workers is None:
        workers = os.cpu_count() or 1
    check_positive('workers', workers)

    params = dict(
        seed=int(seed),
        num_teacher_videos=int(num_teacher_videos),
        num_train_videos=int(num_train_videos),
        num_val_videos=int(num_val_videos),
        num_frames=int(num_frames),
        size=int(size),
        fps=int(fps),
        pose_agreement=float(pose_agreement))
    meta_path = osp.join(out_dir, _META_FILE)
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            try:
                old = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{meta_path} is not valid JSON: {e}')
        old_params = dict(old.get('params', {}))
        old_params['generator_version'] = old.get('generator_version')
        new_params = dict(params, generator_version=GENERATOR_VERSION)
        if old_params == new_params:
            print_log(
                f'Demo dataset in {out_dir} already exists with the same '
                'parameters; nothing to do.',
                logger='current')
            return dict(old, generated=False)
        if not overwrite:
            diff = {
                key: (old_params.get(key), new_params.get(key))
                for key in sorted(set(old_params) | set(new_params))
                if old_params.get(key) != new_params.get(key)
            }
            raise ValueError(
                f'{meta_path} records a demo dataset with other parameters '
                f'(key: (on disk, requested)): {diff}. Pass overwrite=True '
                '(--overwrite) to replace it, or choose another out_dir.')
        print_log(
            f'Replacing the demo dataset in {out_dir}.', logger='current')
    elif any(osp.lexists(path) for path in _owned_paths(out_dir)):
        print_log(
            f'{out_dir} holds an incomplete demo dataset (no {_META_FILE}); '
            'generating it again.',
            logger='current')
    _remove_owned(out_dir)

    counts = dict(
        teacher_train=num_teacher_videos,
        train=num_train_videos,
        val=num_val_videos)
    tasks = []
    for split_id, split in enumerate(SPLITS):
        os.makedirs(osp.join(out_dir, _VIDEO_DIR, split), exist_ok=True)
        labels = _balanced_labels(seed, split_id, counts[split], len(CLASSES))
        tasks += [(out_dir, split, split_id, index, int(label), seed,
                   num_frames, size, fps, pose_agreement)
                  for index, label in enumerate(labels)]

    results = run_tasks(_make_video, tasks, workers, progress)

    meta = dict(
        generator_version=GENERATOR_VERSION,
        params=params,
        classes=list(CLASSES),
        single_frame_upper_bound=pose_agreement / len(SPEEDS),
        splits={})
    start = 0
    for split in SPLITS:
        split_results = results[start:start + counts[split]]
        start += counts[split]
        write_text(
            osp.join(out_dir, _list_file(split)),
            ''.join(f'{path} {label}\n' for path, label, _ in split_results))
        class_counts = np.bincount([label for _, label, _ in split_results],
                                   minlength=len(CLASSES))
        agree = np.mean([lat['pose'] == lat['direction']
                         for _, _, lat in split_results])
        meta['splits'][split] = dict(
            list_file=_list_file(split),
            num_videos=counts[split],
            class_counts=dict(zip(CLASSES, class_counts.tolist())),
            pose_agreement_observed=round(float(agree), 4))
    write_text(
        osp.join(out_dir, _LABEL_MAP_FILE),
        ''.join(f'{name}\n' for name in CLASSES))
    # Last: its presence is what marks the dataset complete.
    write_text(meta_path, json.dumps(meta, indent=2) + '\n')
    return dict(meta, generated=True)
