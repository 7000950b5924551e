"""Frames for one prediction: a video, a directory of frames or an image
through the config's test pipeline (for frames and images its opener is
dropped and its decoder reads the sampled image files)."""
import os
import os.path as osp
import re
from typing import Dict, List

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from ..utils.typing_utils import PathLike
from .spec import get_test_pipeline

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff')


# ----------------------------------------------------------------- frames
def _natural_key(name: str) -> List:
    return [int(p) if p.isdigit() else p.lower()
            for p in re.split(r'(\d+)', name)]


def list_frames(directory: PathLike) -> List[str]:
    """Image files of a directory in natural order."""
    directory = os.fspath(directory)
    files = [
        f for f in os.listdir(directory)
        if f.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if not files:
        raise FileNotFoundError(
            f'no image files ({", ".join(IMAGE_EXTENSIONS)}) in the frame '
            f'directory {directory}')
    return [osp.join(directory, f) for f in sorted(files, key=_natural_key)]


class _ReadImages:
    """Stands in for the pipeline's decoder: reads the sampled frames.

    Not mmaction2's ``RawFrameDecode``: it builds file names from a
    ``filename_tmpl`` and an offset, while a user's folder holds frames of
    any name in natural order, and a single image must fill every sampled
    index.

    Args:
        files (list[str]): The frames, in order.
        order_key (str): ``'frame_inds'`` (the decoder's order: sorted,
            unique) or ``'student_inds'``: the student frames in order, so
            that one image fills every student frame (``frame_inds`` would
            hold it once).
    """

    def __init__(self, files: List[str], order_key: str) -> None:
        self.files = files
        self.order_key = order_key

    def __call__(self, results: Dict) -> Dict:
        key = self.order_key if self.order_key in results else 'frame_inds'
        inds = np.asarray(results[key]).reshape(-1) - results.get(
            'start_index', 0)
        cache = {}
        imgs = []
        for i in inds:
            path = self.files[int(i) % len(self.files)]
            if path not in cache:
                bgr = cv2.imread(path, cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f'cannot read the image {path}')
                # decord decodes RGB; so do the video pipelines.
                cache[path] = np.ascontiguousarray(bgr[..., ::-1])
            imgs.append(cache[path])
        if len({img.shape for img in imgs}) > 1:
            raise ValueError(
                f'frames of {osp.dirname(self.files[0])} differ in size: '
                f'{sorted({img.shape for img in imgs})}')
        results['imgs'] = imgs
        results['original_shape'] = imgs[0].shape[:2]
        results['img_shape'] = imgs[0].shape[:2]
        return results


def input_kind(path: PathLike) -> str:
    """``'frames'`` (a directory), ``'image'`` or ``'video'``."""
    path = os.fspath(path)
    if osp.isdir(path):
        return 'frames'
    if not osp.isfile(path):
        raise FileNotFoundError(f'input not found: {path}')
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return 'image'
    return 'video'


def load_frames(cfg: Config, path: PathLike) -> np.ndarray:
    """The frames one prediction sees, through the test pipeline.

    Args:
        cfg (Config): The config.
        path (str): A video, a directory of frames or an image.

    Returns:
        np.ndarray: float32 pixels ``(F, 3, H, W)``.
    """
    init_default_scope('mmaction')
    path = os.fspath(path)
    kind = input_kind(path)
    pipeline = get_test_pipeline(cfg)
    if not pipeline or pipeline[-1].get('type') != 'PackActionInputs':
        raise ValueError('the test pipeline must end with PackActionInputs')
    if kind == 'video':
        results = dict(filename=path, start_index=0, modality='RGB')
        transforms = [TRANSFORMS.build(t) for t in pipeline]
    else:
        files = list_frames(path) if kind == 'frames' else [path]
        results = dict(
            filename=path,
            frame_dir=path,
            total_frames=len(files),
            start_index=0,
            modality='RGB')
        # HalluSplitViews picks the student frames out of the decoder's
        # order itself; without it the decoded frames are the input.
        types = [t.get('type', '') for t in pipeline]
        order = 'frame_inds' if 'HalluSplitViews' in types else \
            'student_inds'
        transforms = []
        for t in pipeline:
            kind_t = t.get('type', '')
            if kind_t.endswith('Init'):
                continue
            transforms.append(
                _ReadImages(files, order) if kind_t.endswith('Decode') else
                TRANSFORMS.build(t))
        if not any(isinstance(t, _ReadImages) for t in transforms):
            raise ValueError('the test pipeline has no *Decode step to '
                             f'replace by reading the images of {path}')
    packed = Compose(transforms)(results)
    imgs = packed['inputs']
    if imgs.dim() != 4 or imgs.shape[1] != 3:
        raise ValueError(f'the test pipeline gives inputs of shape '
                         f'{tuple(imgs.shape)}, expected (F, 3, H, W) '
                         "(FormatShape input_format='NCHW')")
    return imgs.float().numpy()
