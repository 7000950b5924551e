"""A synthetic diving dataset in MTL-AQA's released layout.

The long-term counterpart of :mod:`demo.demo_data`:
competition "event" videos in which a sprite dives, several times per
event, from a board on the left into a pool at the bottom. Each dive has
MTL-AQA's five properties and a judges' score:

- ``position`` (3): the body shape, straight, tuck or pike. Visible in
  any frame.
- ``armstand`` (2): whether the dive starts from a handstand on the board.
  Visible in the dive's first frames.
- ``rotation_type`` (4): forward, backward, reverse or inward, i.e. which
  way the diver faces at take-off (a bright face mark) crossed with the
  sense of the somersaults (forward and backward turn clockwise, reverse
  and inward anticlockwise, as seen with the board on the left).
- ``ss_no`` (4): 1, 2, 3 or 4 somersaults (plus the half turn that takes a
  diver from the board head first into the water; an armstand already
  starts head down). Sampling every 16th frame aliases the turns: at 3 and
  4 somersaults the 16-frame step exceeds half a turn, so the sparse frames
  seem to turn the other way, slower. Motion blur hints at the speed in a
  single frame; a 16-frame clip shows it.
- ``tw_no`` (3): 0, 1 or 2 twists, seen as the body narrowing and the face
  mark crossing it.
- ``final_score``: difficulty (from the properties, as in diving) times
  execution, the sum of three judges' marks out of 10, lowered by wobble
  (jitter of the rotation, seen in motion, not in a frame) and by the entry
  error (a tilted entry and a bigger splash at the end of the dive).

The layout is exactly the release's (``MTL-AQA_dataset_release``,
``Ready_2_Use/MTL-AQA_split_0_data`` and ``whole_videos``)::

    out_dir/
        whole_videos/{event:02d}.mp4          # one video per event
        final_annotations_dict.pkl            # {(event, clip): {fields}}
        train_split_0.pkl, test_split_0.pkl   # [(event, clip), ...]
        unlabelled_split_0.pkl                # [(event, clip), ...], optional
        teacher_clips/{index:05d}.mp4          # short clips, 3D pre-training
        teacher_{train,val}_list.txt           # 'index.mp4 label' lines
        meta.json                              # written last

with the released fields ``primary_view``, ``start_frame``, ``end_frame``
(inclusive, frames counted from 0), ``position``, ``difficulty``,
``armstand``, ``rotation_type``, ``ss_no``, ``tw_no`` and ``final_score``.
Test events are apart from training events (their own backgrounds), and
so are the optional unlabelled events, whose dives a student may use
without their labels (``tools/train.py --unlabelled unlabelled_split_0.pkl``).

``teacher_clips`` stand in for the teacher's Kinetics pre-training: short
clips of a sprite in flight, labelled by how it turns (``TEACHER_CLASSES``:
sense and rate of the somersaults), so a small 3D
network can learn motion features before the students hallucinate them;
every sixth clip is held out in ``teacher_val_list.txt``.

Every event and clip is drawn from its own generator seeded with ``(seed,
kind, index)``: the data depend on the parameters only, not on the number of
workers.
"""
import json
import os
import os.path as osp
import pickle
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

# Bump whenever a change alters the generated pixels or annotations.
GENERATOR_VERSION = 2

# Class counts of the demo's properties (MTLAQADataset / DiveLSTMHead
# ``properties``); names and ids as in MTL-AQA, fewer classes.
DIVE_PROPERTIES = dict(
    position=3, armstand=2, rotation_type=4, ss_no=4, tw_no=3)
POSITIONS = ('straight', 'tuck', 'pike')
ROTATION_TYPES = ('forward', 'backward', 'reverse', 'inward')
# rotation type -> (facing: +1 pool / -1 board, sense: +1 clockwise)
_ROTATION = {0: (1, 1), 1: (-1, 1), 2: (1, -1), 3: (-1, -1)}
TEACHER_CLASSES = tuple(f'{sense}_{ss}ss' for sense in ('cw', 'ccw')
                        for ss in range(1, 5))

ANNOTATION_FILE = 'final_annotations_dict.pkl'
SPLIT_FILES = dict(
    train='train_split_0.pkl',
    test='test_split_0.pkl',
    unlabelled='unlabelled_split_0.pkl')
VIDEO_DIR = 'whole_videos'
TEACHER_DIR = 'teacher_clips'
TEACHER_LISTS = dict(
    train='teacher_train_list.txt', val='teacher_val_list.txt')
_META_FILE = 'meta.json'

# Timing of a dive, in frames from its start_frame: standing on the board,
# then the flight, then the splash until end_frame.
DIVE_FRAMES = 104
_STAND = 6
_FLIGHT = 82
# Geometry in fractions of the frame side.
_BOARD_Y, _BOARD_X = 0.36, 0.22
_WATER_Y = 0.86
_BODY_LEN = 0.34
_TEXTURE = 20.0
_NOISE_STD = 3.0
# Exposure of a frame as a fraction of the frame interval (motion blur),
# and the sub-frames rendered over it.
_SHUTTER, _SUBFRAMES = 0.6, 3
_SHIFT = 4


# ------------------------------------------------------------- the diver
def _body(position: int, length: float) -> List[np.ndarray]:
    """Polygons of the body in its own frame: head up (+y), facing +x,
    centred on the hips."""
    half, w = length / 2, length * 0.13
    if position == 0:  # straight
        torso = np.array([[-w, -half], [w, -half], [w, half], [-w, half]])
        return [torso, _disc(length * 0.12, (0, half + length * 0.08))]
    if position == 1:  # tuck: knees to the chest, a compact ball
        ball = _disc(length * 0.27, (0, 0))
        return [ball, _disc(length * 0.12, (0, length * 0.33))]
    # pike: legs straight out in front, folded at the hips
    torso = np.array([[-w, 0], [w, 0], [w, half], [-w, half]])
    legs = np.array([[-w, -w], [half, -w], [half, w], [-w, w]])
    return [torso, legs, _disc(length * 0.12, (0, half + length * 0.08))]


def _disc(radius: float, centre: Tuple[float, float],
          num: int = 12) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, num, endpoint=False)
    return np.stack([np.cos(theta), np.sin(theta)], 1) * radius + centre


def _place(points: np.ndarray, angle: float, width: float,
           centre: np.ndarray) -> np.ndarray:
    """Body frame -> image: squeeze x by ``width`` (twist), turn clockwise
    on screen by ``angle`` (radians), move to ``centre``."""
    x, y = points[:, 0] * width, points[:, 1]
    cos, sin = np.cos(angle), np.sin(angle)
    # Screen y points down: a clockwise turn takes the head (+y) to +x.
    return np.stack([x * cos + y * sin, -(-x * sin + y * cos)], 1) + centre


def _fill(img: np.ndarray, polygon: np.ndarray, color) -> None:
    cv2.fillPoly(
        img, [np.round(polygon * (1 << _SHIFT)).astype(np.int32)],
        color,
        lineType=cv2.LINE_AA,
        shift=_SHIFT)


class _Dive:
    """The motion of one dive: pose and position at any (fractional) frame
    ``t`` counted from its start."""

    def __init__(self, rng: np.random.Generator, labels: Dict[str, int],
                 size: int) -> None:
        self.labels = labels
        self.size = size
        self.facing, self.sense = _ROTATION[labels['rotation_type']]
        self.body = _body(labels['position'], _BODY_LEN * size)
        turns = labels['ss_no'] + 1 + (0.0 if labels['armstand'] else 0.5)
        self.start_angle = np.pi if labels['armstand'] else 0.0
        self.turn = 2 * np.pi * turns * self.sense
        self.twists = labels['tw_no']
        self.wobble = float(rng.uniform(0, 1))
        self.entry_error = float(rng.uniform(0, 1))
        self.entry_tilt = np.deg2rad(40) * self.entry_error * rng.choice(
            [-1, 1])
        self.wobble_freq = rng.uniform(5, 8)
        self.wobble_phase = rng.uniform(0, 2 * np.pi)
        self.peak = rng.uniform(0.04, 0.1) * size
        self.entry_x = rng.uniform(0.55, 0.75) * size
        self.color = hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0),
                                 rng.uniform(0.8, 1.0))

    def pose(self, t: float) -> Optional[Tuple[float, float, np.ndarray]]:
        """``(angle, width, centre)`` at frame ``t``, or None once under
        water."""
        size = self.size
        board = np.array([_BOARD_X * size, _BOARD_Y * size])
        lift = np.array([0, -_BODY_LEN * size * 0.55])
        if t < _STAND:
            return self.start_angle, 1.0, board + lift
        u = (t - _STAND) / _FLIGHT
        if u > 1:
            return None
        water = np.array([self.entry_x, _WATER_Y * size])
        centre = board + lift + (water - board - lift) * u
        centre[1] -= self.peak * 4 * u * (1 - u)
        # Turn, plus wobble (which vanishes at take-off and entry), plus
        # the entry error growing into the last third of the flight.
        angle = self.start_angle + self.turn * u
        angle += 0.5 * self.wobble * np.sin(
            2 * np.pi * self.wobble_freq * u + self.wobble_phase) * np.sin(
                np.pi * u)
        angle += self.entry_tilt * np.clip(3 * u - 2, 0, 1)
        centre[1] += 0.02 * size * self.wobble * np.sin(
            2 * np.pi * self.wobble_freq * 1.7 * u)
        width = max(abs(np.cos(2 * np.pi * self.twists * u)), 0.3)
        return angle, width, centre

    def draw(self, img: np.ndarray, t: float) -> None:
        pose = self.pose(t)
        if pose is None:
            return
        angle, width, centre = pose
        twist = np.cos(2 * np.pi * self.twists * max(
            (t - _STAND) / _FLIGHT, 0))
        for polygon in self.body:
            _fill(img, _place(polygon, angle, width, centre), self.color)
        # The face mark: on the facing side, crossing over while twisting.
        mark = np.array([[self.facing * twist * 0.09 * self.size * 0.9,
                          _BODY_LEN * self.size * 0.3]])
        mark = _disc(0.05 * self.size, (0, 0)) + mark
        _fill(img, _place(mark, angle, 1.0, centre), (255, 255, 255))

    def draw_splash(self, img: np.ndarray, t: float) -> None:
        since = t - _STAND - _FLIGHT
        if since < 0:
            return
        size = self.size
        radius = (0.05 + 0.12 * self.entry_error) * size * min(
            1.0, 0.25 + since / 6)
        fade = max(0.0, 1 - since / 16)
        if fade <= 0:
            return
        centre = (float(self.entry_x), _WATER_Y * size)
        overlay = img.copy()
        cv2.ellipse(overlay, (int(centre[0]), int(centre[1])),
                    (max(int(radius), 1), max(int(radius * 0.6), 1)), 0, 180,
                    360, (240, 245, 255), -1, cv2.LINE_AA)
        img[:] = cv2.addWeighted(overlay, fade, img, 1 - fade, 0)


def difficulty(labels: Dict[str, int]) -> float:
    """Degree of difficulty: more somersaults and twists, an armstand, the
    backward-turning rotation types and the straight position are harder."""
    return round(
        1.6 + 0.3 * labels['ss_no'] + 0.25 * labels['tw_no'] +
        0.2 * labels['armstand'] + 0.1 * (labels['rotation_type'] >= 2) +
        0.1 * (labels['position'] == 0), 2)


def execution(wobble: float, entry_error: float) -> float:
    """Sum of three judges' marks (0..10 each)."""
    return 3 * (9.5 - 5.0 * wobble - 3.5 * entry_error)


# ------------------------------------------------------------- the scene
class _Scene:
    """An event's background, board, pool, lighting and camera noise."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.size = size
        base = np.array(
            hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.4),
                        rng.uniform(0.35, 0.6)), np.float32)
        texture = periodic_texture(rng, size)
        img = np.clip(base + _TEXTURE * texture, 0, 255).astype(np.uint8)
        water_top = int(_WATER_Y * size)
        water = np.array(
            hsv_to_rgb(
                rng.uniform(0.5, 0.62), rng.uniform(0.5, 0.8),
                rng.uniform(0.45, 0.7)), np.float32)
        img[water_top:] = np.clip(water + _TEXTURE * texture[water_top:],
                                  0, 255).astype(np.uint8)
        board_h = max(int(0.04 * size), 2)
        y = int(_BOARD_Y * size)
        img[y:y + board_h, :int(_BOARD_X * size) + 2] = (200, 200, 190)
        img[y + board_h:water_top, :max(int(0.05 * size), 2)] = (120, 120,
                                                                  115)
        self.background = img
        self.noise_rng = rng

    def frame(self, draw) -> np.ndarray:
        """One frame: the mean of sub-frames over the shutter (motion blur),
        plus sensor noise. ``draw(img, dt)`` draws the moving parts at
        sub-frame offset ``dt``."""
        acc = np.zeros(self.background.shape, np.float32)
        offsets = (np.arange(_SUBFRAMES) / max(_SUBFRAMES - 1, 1) - 0.5) * \
            _SHUTTER
        for dt in offsets:
            img = self.background.copy()
            draw(img, dt)
            acc += img
        acc /= len(offsets)
        acc += self.noise_rng.normal(0, _NOISE_STD, acc.shape)
        return np.clip(acc, 0, 255).astype(np.uint8)


def _random_labels(rng: np.random.Generator) -> Dict[str, int]:
    return {
        name: int(rng.integers(count))
        for name, count in DIVE_PROPERTIES.items()
    }


def render_event(rng: np.random.Generator, num_dives: int,
                 size: int) -> Tuple[np.ndarray, List[Dict]]:
    """Draw one event: ``num_dives`` dives separated by idle gaps.

    Args:
        rng (np.random.Generator): The event's own generator.
        num_dives (int): Dives in the event.
        size (int): Frame side in pixels.

    Returns:
        tuple[np.ndarray, list[dict]]: RGB frames ``(T, size, size, 3)``
        uint8 and, per dive, its annotation (released fields) and latent
        factors (``wobble``, ``entry_error``).
    """
    scene = _Scene(rng, size)
    dives, starts, t = [], [], 0
    for _ in range(num_dives):
        t += int(rng.integers(6, 21))  # idle board between dives
        labels = _random_labels(rng)
        dives.append(_Dive(rng, labels, size))
        starts.append(t)
        t += DIVE_FRAMES
    total = t + int(rng.integers(6, 21))
    frames = np.empty((total, size, size, 3), np.uint8)
    for f in range(total):
        active = [(d, f - s) for d, s in zip(dives, starts)
                  if 0 <= f - s < DIVE_FRAMES]

        def draw(img, dt, active=active):
            for dive, local in active:
                dive.draw_splash(img, local + dt)
                dive.draw(img, local + dt)

        frames[f] = scene.frame(draw)
    annotations = []
    for dive, start in zip(dives, starts):
        record = dict(
            primary_view=0,
            start_frame=start,
            end_frame=start + DIVE_FRAMES - 1,
            difficulty=difficulty(dive.labels),
            **dive.labels)
        record['final_score'] = round(
            record['difficulty'] * execution(dive.wobble, dive.entry_error),
            2)
        annotations.append(
            dict(
                record=record,
                latents=dict(
                    wobble=round(dive.wobble, 4),
                    entry_error=round(dive.entry_error, 4))))
    return frames, annotations


def render_teacher_clip(rng: np.random.Generator, label: int, num_frames: int,
                        size: int) -> np.ndarray:
    """A short clip of a sprite in flight, turning as ``TEACHER_CLASSES
    [label]`` says (sense and rate); shape, twists and the rest random.

    Returns:
        np.ndarray: RGB frames ``(num_frames, size, size, 3)`` uint8.
    """
    sense_id, ss_no = divmod(label, 4)
    labels = dict(
        position=int(rng.integers(3)),
        armstand=int(rng.integers(2)),
        rotation_type=int(rng.integers(2)) + 2 * sense_id,
        ss_no=ss_no,
        tw_no=int(rng.integers(3)))
    scene = _Scene(rng, size)
    dive = _Dive(rng, labels, size)
    # A window of the flight, so take-off and entry are rarely seen.
    first = _STAND + rng.uniform(0, _FLIGHT - num_frames)
    return np.stack([
        scene.frame(lambda img, dt, f=f: dive.draw(img, first + f + dt))
        for f in range(num_frames)
    ])


# ------------------------------------------------------------- writing
def _make_event(task: Tuple) -> Tuple[int, List[Dict]]:
    out_dir, seed, event, num_dives, size, fps = task
    cv2.setNumThreads(1)
    frames, annotations = render_event(
        np.random.default_rng([seed, 0, event]), num_dives, size)
    write_video(
        osp.join(out_dir, VIDEO_DIR, f'{event:02d}.mp4'), frames, fps)
    return event, annotations


def _make_clip(task: Tuple) -> Tuple[str, int]:
    out_dir, seed, index, label, num_frames, size, fps = task
    cv2.setNumThreads(1)
    frames = render_teacher_clip(
        np.random.default_rng([seed, 1, index]), label, num_frames, size)
    name = f'{index:05d}.mp4'
    write_video(osp.join(out_dir, TEACHER_DIR, name), frames, fps)
    return name, label


def _owned_paths(out_dir: str) -> List[str]:
    names = [
        VIDEO_DIR, TEACHER_DIR, ANNOTATION_FILE, _META_FILE,
        _META_FILE + '.tmp', *SPLIT_FILES.values(), *TEACHER_LISTS.values()
    ]
    return [osp.join(out_dir, name) for name in names]




def _dump_pickle(obj, path: str) -> None:
    with open(path + '.tmp', 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    os.replace(path + '.tmp', path)


def generate_dive_demo_dataset(out_dir: str,
                               seed: int = 0,
                               num_train_events: int = 16,
                               num_test_events: int = 8,
                               num_unlabelled_events: int = 0,
                               dives_per_event: int = 4,
                               num_teacher_clips: int = 480,
                               teacher_clip_frames: int = 16,
                               size: int = 64,
                               fps: int = 25,
                               workers: Optional[int] = None,
                               overwrite: bool = False) -> Dict:
    """Generate the diving demo dataset under ``out_dir``, or reuse it.

    As :func:`demo.demo_data.generate_demo_dataset`:
    nothing is written when ``meta.json`` records the same parameters;
    ``meta.json`` is written last; only the generator's own paths are ever
    removed.

    Args:
        out_dir (str): Root of the dataset.
        seed (int): Seed; the data depend on it and the other parameters
            only.
        num_train_events (int): Events whose dives form
            ``train_split_0.pkl``.
        num_test_events (int): Events whose dives form
            ``test_split_0.pkl``.
        num_unlabelled_events (int): Further events whose dives form
            ``unlabelled_split_0.pkl`` (written only when positive): dives
            for the hallucination loss alone (``tools/train.py
            --unlabelled``); they are annotated like the others, but
            training never reads those labels.
        dives_per_event (int): Dives in each event video.
        num_teacher_clips (int): Clips for the teacher's pre-training, a
            sixth of them held out for validation (0 for none).
        teacher_clip_frames (int): Frames per teacher clip.
        size (int): Frame side in pixels (a multiple of 32: decord 0.6
            cannot read some other mp4v sizes).
        fps (int): Frame rate stored in the files.
        workers (int, optional): Processes drawing and encoding; defaults
            to the number of CPUs.
        overwrite (bool): Replace a dataset made with other parameters
            instead of raising an error.

    Returns:
        dict: The content of ``meta.json`` (``params``, ``properties``,
        ``splits`` with the number of dives and mean score, per-dive
        ``latents``) and, only in the returned dict, ``generated`` (False
        when an existing dataset was reused).
    """
    for name, value, minimum in (
        ('seed', seed, 0), ('num_train_events', num_train_events, 1),
        ('num_test_events', num_test_events, 1),
        ('num_unlabelled_events', num_unlabelled_events, 0),
        ('dives_per_event', dives_per_event, 1),
        ('num_teacher_clips', num_teacher_clips, 0),
        ('teacher_clip_frames', teacher_clip_frames, 1), ('size', size, 32),
        ('fps', fps, 1)):
        check_positive(name, value, minimum)
    if size % 32:
        raise ValueError(f'size must be a multiple of 32, got {size}')
    if num_train_events + num_test_events + num_unlabelled_events > 99:
        raise ValueError('at most 99 events: MTL-AQA names event videos '
                         '{event:02d}.mp4')
    if teacher_clip_frames > _FLIGHT:
        raise ValueError(f'teacher_clip_frames must be <= {_FLIGHT}')
    workers = workers or os.cpu_count() or 1
    params = dict(
        seed=int(seed),
        num_train_events=int(num_train_events),
        num_test_events=int(num_test_events),
        num_unlabelled_events=int(num_unlabelled_events),
        dives_per_event=int(dives_per_event),
        num_teacher_clips=int(num_teacher_clips),
        teacher_clip_frames=int(teacher_clip_frames),
        size=int(size),
        fps=int(fps))
    meta_path = osp.join(out_dir, _META_FILE)
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            try:
                old = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{meta_path} is not valid JSON: {e}')
        same = old.get('params') == params and old.get(
            'generator_version') == GENERATOR_VERSION
        if same:
            print_log(
                f'Dive demo dataset in {out_dir} already exists with the '
                'same parameters; nothing to do.',
                logger='current')
            return dict(old, generated=False)
        if not overwrite:
            raise ValueError(
                f'{meta_path} records a dive demo dataset with other '
                f'parameters ({old.get("params")}, generator version '
                f'{old.get("generator_version")}); pass overwrite=True or '
                'choose another out_dir')
    remove_paths(_owned_paths(out_dir))
    os.makedirs(osp.join(out_dir, VIDEO_DIR))
    os.makedirs(osp.join(out_dir, TEACHER_DIR))

    events = list(
        range(1,
              num_train_events + num_test_events + num_unlabelled_events +
              1))
    results = dict(
        run_tasks(_make_event,
                  [(out_dir, seed, e, dives_per_event, size, fps)
                   for e in events], workers))
    annotations, latents = {}, {}
    splits = dict(train=[], test=[])
    if num_unlabelled_events:
        splits['unlabelled'] = []
    for event in events:
        split = 'train' if event <= num_train_events else (
            'test' if event <= num_train_events + num_test_events else
            'unlabelled')
        for clip, dive in enumerate(results[event], start=1):
            annotations[(event, clip)] = dive['record']
            latents[f'{event:02d}_{clip:02d}'] = dive['latents']
            splits[split].append((event, clip))
    _dump_pickle(annotations, osp.join(out_dir, ANNOTATION_FILE))
    for split, keys in splits.items():
        _dump_pickle(keys, osp.join(out_dir, SPLIT_FILES[split]))

    label_rng = np.random.default_rng([seed, 2])
    labels = label_rng.permutation(
        np.arange(num_teacher_clips) % len(TEACHER_CLASSES))
    clips = run_tasks(_make_clip, [(out_dir, seed, i, int(label),
                                    teacher_clip_frames, size, fps)
                                   for i, label in enumerate(labels)],
                      workers)
    for split, keep in (('train', lambda i: i % 6 != 5),
                        ('val', lambda i: i % 6 == 5)):
        write_text(
            osp.join(out_dir, TEACHER_LISTS[split]),
            ''.join(f'{name} {label}\n'
                    for i, (name, label) in enumerate(clips) if keep(i)))

    meta = dict(
        generator_version=GENERATOR_VERSION,
        params=params,
        properties=DIVE_PROPERTIES,
        teacher_classes=list(TEACHER_CLASSES),
        dive_frames=DIVE_FRAMES,
        splits={
            split: dict(
                split_file=SPLIT_FILES[split],
                num_dives=len(keys),
                mean_score=round(
                    float(
                        np.mean([
                            annotations[k]['final_score'] for k in keys
                        ])), 2))
            for split, keys in splits.items()
        },
        latents=latents)
    write_text(meta_path, json.dumps(meta, indent=1) + '\n')
    return dict(meta, generated=True)
