"""TV-L1 optical flow extraction into mmaction2's rawframe layout.

MoNet's motion-stream teacher reads optical flow through mmaction2's
``RawframeDataset`` with ``modality='Flow'``. This module writes exactly
what that dataset and ``RawFrameDecode`` read::

    <out_root>/<video key>/flow_x_00001.jpg   # motion from frame 1 to 2
    <out_root>/<video key>/flow_y_00001.jpg
    ...
    <out_root>/<video key>/flow_x_<n-1>.jpg
    <out_root>/<video key>/img_00001.jpg      # only with ``also_rgb``
    <out_root>/<video key>/.done              # JSON, written last

Conventions:

- Flow file names follow ``filename_tmpl='flow_{}_{:05d}.jpg'`` (formatted
  with ``'x'``/``'y'`` and the index, as ``RawFrameDecode`` does) and count
  from 1, so the dataset uses ``start_index=1`` (its default). mmaction2's
  own flow configs use ``'{}_{:05d}.jpg'`` (denseflow's ``x_00001.jpg``);
  pass that as ``flow_tmpl`` to produce that naming instead.
- A video of ``n`` frames gives ``n - 1`` flows, one per consecutive pair;
  ``total_frames`` in the annotation file is ``n - 1`` (the flow count, as
  mmaction2's ``build_file_list.py`` writes for flow lists). RGB frames, if
  written, number ``n``; reading them with the same ``total_frames`` keeps
  flow ``i`` aligned with RGB frame ``i``.
- Flow ``(dx, dy)`` is in pixels of the (optionally resized) frames: ``dx``
  positive rightward, ``dy`` positive downward, with
  ``frame[i + 1][y + dy, x + dx] ~= frame[i][y, x]``. Each component is
  clipped to ``[-bound, bound]`` and mapped linearly to ``[0, 255]``:
  ``q = floor((f + bound) * 255 / (2 * bound) + 0.5)``, so zero motion is
  stored as 128 (matching the ``mean=[128]`` of mmaction2's flow
  preprocessors) and ``f ~= q * 2 * bound / 255 - bound`` decodes it (see
  :func:`dequantize_flow`; one step is ``2 * bound / 255`` pixels).

Extraction is resumable: each video is written into a hidden temporary
folder, the ``.done`` marker is written after every image, and only then
is the folder renamed into place. A video whose folder holds a marker with
the same settings is skipped on a re-run; a folder without a (matching)
marker is rebuilt from scratch.
"""
import json
import os
import os.path as osp
import shutil
import warnings
from dataclasses import dataclass, field
from typing import (
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import cv2
import decord
import numpy as np

from ..datasets.transforms.load_flow_clips import (
    DONE_MARKER,
    FLOW_TMPL,
    RGB_TMPL,
    read_done_marker,
)
from ..utils.typing_utils import PathLike

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.mpg',
                    '.mpeg', '.flv', '.wmv', '.3gp')


FLOW_METHODS = ('tvl1', 'dis', 'farneback')


class BadVideoError(RuntimeError):
    """A video is missing, unreadable, corrupt or too short for flow."""


@dataclass
class VideoItem:
    """One video to extract.

    Args:
        path (str): Path of the video file.
        key (str): Output folder relative to the output root, also the
            ``frame_dir`` written to the annotation file.
        labels (list[str]): Label tokens copied to the annotation file;
            empty when unknown (``RawframeDataset`` then uses -1).
    """
    path: str
    key: str
    labels: List[str] = field(default_factory=list)


@dataclass
class VideoFlowResult:
    """What :func:`extract_video_flow` left in its output folder.

    Args:
        total_frames (int): Number of flow pairs, ``num_frames - 1``.
        num_frames (int): Number of decoded video frames.
        skipped (bool): True when a finished folder was reused.
    """
    total_frames: int
    num_frames: int
    skipped: bool


def create_flow_estimator(
        method: str = 'tvl1') -> Tuple[cv2.DenseOpticalFlow, str]:
    """Build an OpenCV dense optical flow estimator.

    OpenCV 5.0's contrib build, like 4.x, exposes Dual TV-L1 as
    ``cv2.optflow.DualTVL1OpticalFlow_create`` (3.x had it at top level as
    ``cv2.DualTVL1OpticalFlow_create``). Only when neither exists (an
    OpenCV without the contrib ``optflow`` module) does ``'tvl1'`` fall
    back to DIS with a warning; the returned name says which one ran.

    Args:
        method (str): ``'tvl1'``, ``'dis'`` or ``'farneback'``.

    Returns:
        tuple[cv2.DenseOpticalFlow, str]: The estimator, whose
        ``calc(prev, next, None)`` takes two uint8 grayscale images and
        returns an ``(H, W, 2)`` float32 flow, and the method actually used.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f'Unknown flow method {method!r}; expected one of '
                         f'{FLOW_METHODS}.')
    if method == 'tvl1':
        optflow = getattr(cv2, 'optflow', None)
        create = getattr(optflow, 'DualTVL1OpticalFlow_create', None)
        create = create or getattr(cv2, 'DualTVL1OpticalFlow_create', None)
        if create is not None:
            return create(), 'tvl1'
        warnings.warn(
            f'OpenCV {cv2.__version__} has no Dual TV-L1 optical flow '
            '(needs opencv-contrib-python); falling back to DIS, whose '
            'flow differs from the TV-L1 flow of published two-stream '
            'models.')
        method = 'dis'
    if method == 'dis':
        return cv2.DISOpticalFlow_create(
            cv2.DISOPTICAL_FLOW_PRESET_MEDIUM), 'dis'
    return cv2.FarnebackOpticalFlow_create(), 'farneback'


def _to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) gray uint8 -> (H, W) gray uint8."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f'Expected an (H, W) or (H, W, 3) frame, got shape '
                     f'{frame.shape}.')


def iter_flow(frames: Iterable[np.ndarray],
              estimator: Optional[cv2.DenseOpticalFlow] = None
              ) -> Iterator[np.ndarray]:
    """Yield the flow of each consecutive frame pair, one at a time.

    Args:
        frames (Iterable[np.ndarray]): uint8 frames, each ``(H, W, 3)`` RGB
            or ``(H, W)`` grayscale.
        estimator (cv2.DenseOpticalFlow, optional): From
            :func:`create_flow_estimator`; TV-L1 when None.

    Yields:
        np.ndarray: ``(H, W, 2)`` float32 flow ``(dx, dy)`` in pixels from
        frame ``i`` to frame ``i + 1``.
    """
    if estimator is None:
        estimator, _ = create_flow_estimator('tvl1')
    prev = None
    for frame in frames:
        gray = _to_gray(np.asarray(frame))
        if prev is not None:
            if gray.shape != prev.shape:
                raise ValueError(f'Frame size changed from {prev.shape} to '
                                 f'{gray.shape}.')
            yield estimator.calc(prev, gray, None)
        prev = gray


def compute_tvl1_flow(
        frames: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
    """TV-L1 optical flow between consecutive frames.

    Args:
        frames (np.ndarray | Sequence[np.ndarray]): ``(N, H, W, 3)`` RGB or
            ``(N, H, W)`` grayscale uint8 frames, ``N >= 2``.

    Returns:
        np.ndarray: ``(N - 1, H, W, 2)`` float32 flows; ``[..., 0]`` is
        ``dx`` (rightward), ``[..., 1]`` is ``dy`` (downward).
    """
    if len(frames) < 2:
        raise ValueError(f'Optical flow needs at least 2 frames, got '
                         f'{len(frames)}.')
    estimator, _ = create_flow_estimator('tvl1')
    return np.stack(list(iter_flow(frames, estimator)))


def quantize_flow(flow: np.ndarray, bound: float = 20.) -> np.ndarray:
    """Map flow in ``[-bound, bound]`` linearly to uint8 ``[0, 255]``.

    Not ``mmcv.video.quantize_flow``: that one uses 255 levels with
    ``floor``, so zero motion becomes 127, one step off the ``mean=128`` of
    mmaction2's flow preprocessors and of denseflow's files, which this
    layout matches.

    Args:
        flow (np.ndarray): Flow component(s) in pixels, any shape.
        bound (float): Values beyond ``+-bound`` are clipped.

    Returns:
        np.ndarray: uint8 array of the same shape; 0 motion -> 128.
    """
    if bound <= 0:
        raise ValueError(f'bound must be positive, got {bound}.')
    flow = np.clip(flow, -bound, bound)
    scaled = (flow + bound) * (255. / (2. * bound))
    # floor(x + 0.5) rounds 127.5 up, so zero motion is exactly 128.
    return np.floor(scaled + 0.5).astype(np.uint8)


def dequantize_flow(image: np.ndarray, bound: float = 20.) -> np.ndarray:
    """Inverse of :func:`quantize_flow`, up to one quantisation step.

    Args:
        image (np.ndarray): uint8 flow image(s), any shape.
        bound (float): The bound used when quantising.

    Returns:
        np.ndarray: float32 flow in pixels, same shape.
    """
    return (image.astype(np.float32) * (2. * bound / 255.) - bound)


def _resize_short(frame: np.ndarray, new_short: int) -> np.ndarray:
    """Resize so the short side is ``new_short``, keeping aspect ratio."""
    h, w = frame.shape[:2]
    scale = new_short / min(h, w)
    if scale == 1:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interp)


def _decode_frames(video_path: str) -> Iterator[np.ndarray]:
    """Decode a video with decord, frame by frame, as (H, W, 3) RGB uint8.

    Raises:
        BadVideoError: Naming the file if it is missing, cannot be opened
            or decoded, or has fewer than 2 frames.
    """
    if not osp.isfile(video_path):
        raise BadVideoError(f'Video file not found: {video_path}')
    try:
        reader = decord.VideoReader(video_path, num_threads=1)
        num_frames = len(reader)
    except Exception as e:  # decord raises RuntimeError or DECORDError
        raise BadVideoError(
            f'Cannot open video {video_path}: {e}'.strip()) from e
    if num_frames < 2:
        raise BadVideoError(f'Video {video_path} has {num_frames} frame(s); '
                            'optical flow needs at least 2.')
    shape = None
    for i in range(num_frames):
        try:
            frame = reader.next().asnumpy()
        except StopIteration:
            raise BadVideoError(
                f'Video {video_path} ended after {i} of the {num_frames} '
                'frames its header announces.')
        except Exception as e:
            raise BadVideoError(
                f'Cannot decode frame {i} of video {video_path}: {e}') from e
        # decord 0.6 mis-shapes some sizes (e.g. 48x48 gives (48, 48, 4));
        # refuse them rather than compute flow on scrambled pixels.
        bad_shape = frame.ndim != 3 or frame.shape[2] != 3
        if bad_shape or (shape is not None and frame.shape != shape):
            raise BadVideoError(
                f'decord returned frame {i} of video {video_path} with '
                f'shape {frame.shape}; expected (H, W, 3)'
                f'{" = " + str(shape) if shape else ""}.')
        shape = frame.shape
        yield frame


def _settings(bound: float, new_short: Optional[int], also_rgb: bool,
              method: str, flow_tmpl: str, rgb_tmpl: str,
              jpeg_quality: int) -> Dict:
    """The settings a finished folder must match to be reused."""
    return dict(
        bound=float(bound),
        new_short=new_short,
        also_rgb=bool(also_rgb),
        method=method,
        flow_tmpl=flow_tmpl,
        rgb_tmpl=rgb_tmpl if also_rgb else None,
        jpeg_quality=int(jpeg_quality))


def extract_video_flow(video_path: PathLike,
                       out_dir: PathLike,
                       bound: float = 20.,
                       new_short: Optional[int] = None,
                       also_rgb: bool = False,
                       method: str = 'tvl1',
                       flow_tmpl: str = FLOW_TMPL,
                       rgb_tmpl: str = RGB_TMPL,
                       jpeg_quality: int = 95,
                       overwrite: bool = False) -> VideoFlowResult:
    """Extract one video's flow (and optionally RGB) frames into a folder.

    The folder is built under a temporary name next to ``out_dir`` and
    renamed into place after its ``.done`` marker is written, so
    ``out_dir`` is either absent, finished, or a leftover from an older
    tool, which is rebuilt.

    Args:
        video_path (str | PathLike): Input video, decoded with decord.
        out_dir (str | PathLike): Folder receiving the images.
        bound (float): Flow clipping bound in pixels for quantisation.
        new_short (int, optional): Resize frames so their short side has
            this length before computing flow; None keeps the size.
        also_rgb (bool): Also write the ``n`` RGB frames as ``rgb_tmpl``.
        method (str): Flow method for :func:`create_flow_estimator`.
        flow_tmpl (str): Flow file template, formatted with ``'x'``/``'y'``
            and the 1-based pair index.
        rgb_tmpl (str): RGB file template, formatted with the 1-based frame
            index.
        jpeg_quality (int): JPEG quality, 0-100.
        overwrite (bool): Rebuild even if a matching marker exists.

    Returns:
        VideoFlowResult: Flow and frame counts, and whether it was skipped.

    Raises:
        BadVideoError: Naming the file when it is missing, corrupt, or has
            fewer than 2 frames.
    """
    video_path, out_dir = str(video_path), str(out_dir)
    if new_short is not None and new_short <= 0:
        raise ValueError(f'new_short must be positive, got {new_short}.')
    estimator, method_used = create_flow_estimator(method)
    settings = _settings(bound, new_short, also_rgb, method_used, flow_tmpl,
                         rgb_tmpl, jpeg_quality)
    done = read_done_marker(out_dir)
    if not overwrite and done is not None and all(
            done.get(k) == v for k, v in settings.items()):
        return VideoFlowResult(done['total_frames'], done['num_frames'],
                               True)

    parent, name = osp.split(osp.abspath(out_dir))
    tmp_dir = osp.join(parent, f'.{name}.tmp')
    if osp.exists(tmp_dir):
        # Left behind by an interrupted run.
        shutil.rmtree(tmp_dir)
    os.makedirs(tmp_dir)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]

    def write(filename: str, image: np.ndarray) -> None:
        path = osp.join(tmp_dir, filename)
        if not cv2.imwrite(path, image, params):
            raise OSError(f'Failed to write {path}')

    num_frames = 0
    shape = None

    def frames() -> Iterator[np.ndarray]:
        nonlocal num_frames, shape
        for frame in _decode_frames(video_path):
            if new_short is not None:
                frame = _resize_short(frame, new_short)
            num_frames += 1
            shape = frame.shape[:2]
            if also_rgb:
                write(rgb_tmpl.format(num_frames),
                      cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            yield frame

    try:
        total = 0
        for total, flow in enumerate(iter_flow(frames(), estimator), 1):
            write(flow_tmpl.format('x', total),
                  quantize_flow(flow[..., 0], bound))
            write(flow_tmpl.format('y', total),
                  quantize_flow(flow[..., 1], bound))
        with open(osp.join(tmp_dir, DONE_MARKER), 'w') as f:
            json.dump(
                dict(
                    total_frames=total,
                    num_frames=num_frames,
                    height=shape[0],
                    width=shape[1],
                    **settings), f)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if osp.lexists(out_dir):
        shutil.rmtree(out_dir)
    os.rename(tmp_dir, out_dir)
    return VideoFlowResult(total, num_frames, False)
