import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...utils.typing_utils import PathLike

_OUT_OF_BOUND = ('repeat_last', 'error')
_INTERPOLATIONS = dict(
    nearest=cv2.INTER_NEAREST,
    bilinear=cv2.INTER_LINEAR,
    area=cv2.INTER_AREA,
    bicubic=cv2.INTER_CUBIC)


# The folder layout tools/extract_flow.py writes (and denseflow's names).
FLOW_TMPL = 'flow_{}_{:05d}.jpg'
RGB_TMPL = 'img_{:05d}.jpg'
DONE_MARKER = '.done'


def read_done_marker(out_dir: PathLike) -> Optional[Dict]:
    """Contents of a finished folder's ``.done`` marker, None if absent.

    Args:
        out_dir (str | PathLike): A video's output folder.

    Returns:
        dict, optional: ``total_frames``, ``num_frames``, ``height``,
        ``width`` and the extraction settings; None when the folder is
        missing, unfinished or its marker is unreadable.
    """
    marker = osp.join(out_dir, DONE_MARKER)
    try:
        with open(marker) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or 'total_frames' not in info:
        return None
    return info


@TRANSFORMS.register_module()
class LoadFlowClips(BaseTransform):
    """Load a stack of optical flow frames per segment: the teacher view of
    a flow-stream teacher (MoNet's TSN on flow).

    After :class:`HalluSampleFrames`, segment ``s`` whose student frame is
    frame ``j = clip_starts[s]`` (0-based) gets the ``clip_len`` flows that
    start there, the motion from frame ``j`` to ``j + clip_len`` (TSN's
    5-flow snippet). In the layout ``tools/extract_flow.py`` writes, the flow
    from frame ``k`` to ``k + 1`` (0-based) is the file pair
    ``flow_x_{k + 1:05d}.jpg`` / ``flow_y_{k + 1:05d}.jpg`` (``start_index``
    1) of the video's folder under ``flow_root``; a video of ``n`` frames
    has ``n - 1`` flows. A sampler ``clip_len`` of at least this
    ``clip_len + 1`` keeps every window inside the video; flows past the
    last one follow ``out_of_bound_opt``.

    The channels are interleaved ``x_1, y_1, x_2, y_2, ...``, the order
    mmaction2's ``FormatShape('NCHW_Flow')`` gives its flow TSN, so a TSN
    trained on mmaction2's flow pipeline sees what it was trained on.

    With ``follow_student_view``, the flow view covers the same region as
    the student frames: the relative crop that mmaction2's crops record in
    ``crop_quadruple`` is applied, and a flip recorded by ``Flip``
    (``flip``, ``flip_direction``) mirrors the images and inverts the
    flipped component (``255 - v``, as mmaction2's ``Flip`` does for flow).
    Place the transform after the shared crops and the flip, which must
    come last among them, so that the recorded region is the final one.

    Normalise the view in :class:`HalluciNetDataPreprocessor` with
    ``teacher=dict(format_shape='NCHW', mean=..., std=...)``: the batch is
    ``(N, S, 2 * clip_len, H, W)`` and ``'NCHW'`` broadcasts ``mean``/
    ``std`` of length 1 or ``2 * clip_len`` over the channel axis
    (mmaction2's flow recipes use ``[128, 128] * clip_len``).

    Required keys: ``clip_starts``, ``total_frames`` and ``filename`` (a
    video) or ``frame_dir`` (a frame folder); optionally ``crop_quadruple``,
    ``flip``, ``flip_direction``.

    Added keys:
        - teacher_imgs (np.ndarray): ``(S, 2 * clip_len, H, W)`` uint8.
        - teacher_flow_inds (np.ndarray): ``(S, clip_len)`` file indices
          read (as in the file names).

    Args:
        flow_root (str): Root of the per-video flow folders
            (``tools/extract_flow.py --out``).
        clip_len (int): Flows per segment; the flow teacher's
            ``in_channels`` is ``2 * clip_len``.
        scale (Sequence[int], optional): ``(w, h)`` of the loaded view;
            ``None`` keeps the (cropped) size.
        data_prefix (str, optional): The dataset's video (or frame) root: a
            video's folder is its path relative to it, without the
            extension (the key ``tools/extract_flow.py`` gives videos of a
            list file or folder). ``None`` uses the file name's stem alone
            (videos given to ``extract_flow`` as paths).
        filename_tmpl (str): Flow file name, formatted with ``'x'``/``'y'``
            and the index (``FLOW_TMPL``).
        start_index (int): File index of the first flow.
        follow_student_view (bool): Apply the student's crop and flip.
        out_of_bound_opt (str): ``'repeat_last'`` repeats the last flow of a
            short video, ``'error'`` rejects the video.
        interpolation (str): ``'bilinear'``, ``'nearest'``, ``'area'`` or
            ``'bicubic'``, for the resize to ``scale``.
    """

    def __init__(self,
                 flow_root: str,
                 clip_len: int = 5,
                 scale: Optional[Sequence[int]] = (224, 224),
                 data_prefix: Optional[str] = None,
                 filename_tmpl: str = 'flow_{}_{:05d}.jpg',
                 start_index: int = 1,
                 follow_student_view: bool = True,
                 out_of_bound_opt: str = 'repeat_last',
                 interpolation: str = 'bilinear') -> None:
        if clip_len < 1:
            raise ValueError(f'LoadFlowClips: clip_len={clip_len}; needs at '
                             'least 1 flow per segment')
        if out_of_bound_opt not in _OUT_OF_BOUND:
            raise ValueError(f'LoadFlowClips: out_of_bound_opt='
                             f'{out_of_bound_opt!r}; expected one of '
                             f'{_OUT_OF_BOUND}')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'LoadFlowClips: interpolation={interpolation!r}'
                             f'; expected one of {tuple(_INTERPOLATIONS)}')
        if scale is not None and (len(scale) != 2 or min(scale) < 1):
            raise ValueError(f'LoadFlowClips: scale={scale}; expected (w, h)'
                             ' with positive sides, or None')
        self.flow_root = flow_root
        self.clip_len = clip_len
        self.scale = None if scale is None else tuple(scale)
        self.data_prefix = data_prefix
        self.filename_tmpl = filename_tmpl
        self.start_index = start_index
        self.follow_student_view = follow_student_view
        self.out_of_bound_opt = out_of_bound_opt
        self.interpolation = interpolation

    def flow_dir(self, results: Dict) -> str:
        """The flow folder of the sample ``results`` describes."""
        if results.get('filename') is not None:
            source, is_file = results['filename'], True
        elif results.get('frame_dir') is not None:
            source, is_file = results['frame_dir'], False
        else:
            raise KeyError('LoadFlowClips needs filename (VideoDataset) or '
                           'frame_dir (RawframeDataset) in the results')
        if self.data_prefix is None:
            key = osp.basename(source)
        else:
            key = osp.relpath(source, self.data_prefix)
            if key.startswith('..'):
                raise ValueError(f'LoadFlowClips: {source} is not under '
                                 f'data_prefix {self.data_prefix}')
        if is_file:
            key = osp.splitext(key)[0]
        return osp.join(self.flow_root, key)

    def _num_flows(self, folder: str, results: Dict) -> int:
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'LoadFlowClips: no flow folder {folder} for '
                f'{results.get("filename", results.get("frame_dir"))}; '
                'extract it with tools/extract_flow.py')
        frames = results['total_frames']
        marker = read_done_marker(folder)
        if marker is None:
            # Another extractor (denseflow): n frames give n - 1 flows.
            return frames - 1
        if 'filename' in results and marker.get('num_frames') not in (
                None, frames):
            raise ValueError(
                f'LoadFlowClips: the flow in {folder} was extracted from '
                f'{marker["num_frames"]} frames but the decoder reports '
                f'{frames} for {results["filename"]}; the clip starts would '
                'not line up with the flow')
        return int(marker['total_frames'])

    def flow_indices(self, starts: np.ndarray, num_flows: int,
                     folder: str) -> np.ndarray:
        """File indices ``(S, clip_len)`` of the flows of each segment.

        Args:
            starts (np.ndarray): ``(S, )`` 0-based first frames.
            num_flows (int): Flows in the folder.
            folder (str): For error messages.
        """
        if num_flows < 1:
            raise ValueError(f'LoadFlowClips: {folder} has no flow '
                             f'({num_flows} flows)')
        # [S, 1] + [1, T] -> [S, T]
        inds = np.asarray(starts, np.int64)[:, None] + np.arange(
            self.clip_len)[None]
        if inds.min() < 0:
            raise ValueError(f'LoadFlowClips: negative clip start in '
                             f'{starts} for {folder}')
        if inds.max() >= num_flows:
            if self.out_of_bound_opt == 'error':
                last = int(inds.max()) + 1 - self.clip_len
                raise ValueError(
                    f'LoadFlowClips: {folder} has {num_flows} flows but the '
                    f'segment starting at frame {last} needs flows up to '
                    f"{int(inds.max())} (out_of_bound_opt='error')")
            inds = np.minimum(inds, num_flows - 1)
        return inds + self.start_index

    def _read(self, folder: str, direction: str, index: int) -> np.ndarray:
        path = osp.join(folder, self.filename_tmpl.format(direction, index))
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(
                f'LoadFlowClips: cannot read flow_{direction} frame {index} '
                f'of {folder}: {path} is missing or not an image')
        return img

    def _view(self, img: np.ndarray, direction: str,
              results: Dict) -> np.ndarray:
        """Crop and flip like the student, then resize."""
        if self.follow_student_view:
            quad = results.get('crop_quadruple')
            if quad is not None:
                h, w = img.shape
                x0, y0 = int(round(quad[0] * w)), int(round(quad[1] * h))
                cw = max(int(round(quad[2] * w)), 1)
                ch = max(int(round(quad[3] * h)), 1)
                img = img[y0:y0 + ch, x0:x0 + cw]
            if results.get('flip', False):
                flip_dir = results.get('flip_direction', 'horizontal')
                axis = 1 if flip_dir == 'horizontal' else 0
                img = np.flip(img, axis=axis)
                # Mirroring an axis reverses the motion along it.
                if (direction == 'x') == (axis == 1):
                    img = 255 - img
        if self.scale is not None and img.shape[::-1] != self.scale:
            img = cv2.resize(
                np.ascontiguousarray(img),
                self.scale,
                interpolation=_INTERPOLATIONS[self.interpolation])
        return img

    def transform(self, results: Dict) -> Dict:
        if 'clip_starts' not in results:
            raise KeyError('LoadFlowClips needs clip_starts: put it after '
                           'HalluSampleFrames')
        folder = self.flow_dir(results)
        inds = self.flow_indices(results['clip_starts'],
                                 self._num_flows(folder, results), folder)
        cache: Dict[Tuple[str, int], np.ndarray] = {}
        stack = []
        for index in inds.reshape(-1):
            for direction in ('x', 'y'):
                key = (direction, int(index))
                if key not in cache:
                    cache[key] = self._view(
                        self._read(folder, direction, int(index)),
                        direction, results)
                stack.append(cache[key])
        shapes = {img.shape for img in stack}
        if len(shapes) > 1:
            raise ValueError(f'LoadFlowClips: flow images of {folder} have '
                             f'different sizes {sorted(shapes)}; set scale')
        # [S * T * 2, H, W] -> [S, T * 2, H, W]: x_1, y_1, x_2, y_2, ...
        clips = np.stack(stack).reshape(len(inds), 2 * self.clip_len,
                                        *stack[0].shape)
        results['teacher_imgs'] = clips
        results['teacher_flow_inds'] = inds
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(flow_root={self.flow_root!r}, '
                f'clip_len={self.clip_len}, scale={self.scale}, '
                f'data_prefix={self.data_prefix!r}, '
                f'filename_tmpl={self.filename_tmpl!r}, '
                f'start_index={self.start_index}, '
                f'follow_student_view={self.follow_student_view}, '
                f'out_of_bound_opt={self.out_of_bound_opt!r}, '
                f'interpolation={self.interpolation!r})')
