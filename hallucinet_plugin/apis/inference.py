"""Predict with a config's student: top-k classes of a video, a directory
of frames or an image (``tools/inference.py``).

Frames are sampled and transformed by the config's test pipeline
(``test_dataloader.dataset.pipeline``): a video goes through it unchanged;
for a directory of frames (image files in natural order: ``img_2`` before
``img_10``) or a single image (one frame, so every sampled index reads it)
the pipeline's video opener (``*Init``) is dropped and its decoder
(``*Decode``) replaced by reading the sampled image files. The deploy path
(:class:`~hallucinet_plugin.apis.export.DeployModel`) then runs in PyTorch
from a checkpoint, or the exported ONNX file in onnxruntime.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from .export import (
    DeployModel,
    build_student,
    get_test_pipeline,
    onnx_metadata,
    onnx_session,
)

PathLike = Union[str, os.PathLike]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff')


# ----------------------------------------------------------------- labels
def load_label_map(source: Union[PathLike, Sequence[str]]) -> List[str]:
    """Class names, index ``i`` -> name: a list, or a text file with one
    name per line (mmaction2's ``label_map_*.txt``)."""
    if isinstance(source, (list, tuple)):
        return [str(name) for name in source]
    path = os.fspath(source)
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map not found: {path}')
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f.read().splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or not all(names):
        raise ValueError(f'label map {path}: expected one class name per '
                         'line, no blank lines')
    return names


def config_label_map(cfg: Config) -> Optional[List[str]]:
    """The config's ``label_map`` (a list of names or a file), if any."""
    label_map = cfg.get('label_map', None)
    return None if label_map is None else load_label_map(label_map)


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


# -------------------------------------------------------------- predicting
class Predictor:
    """The deploy path of a config in PyTorch or onnxruntime.

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): Student checkpoint for PyTorch;
            ``None``: random weights.
        onnx_file (str, optional): Run this exported file in onnxruntime
            instead.
        with_hallu (bool): Also return the hallucinated representation.
    """

    def __init__(self,
                 cfg: Config,
                 checkpoint: Optional[PathLike] = None,
                 onnx_file: Optional[PathLike] = None,
                 with_hallu: bool = False) -> None:
        self.cfg = cfg
        self.with_hallu = with_hallu
        self.session = self.model = None
        if onnx_file is not None:
            if checkpoint is not None:
                raise ValueError('give a checkpoint (PyTorch) or an ONNX '
                                 'file, not both')
            self.session = onnx_session(onnx_file)
            self.meta = onnx_metadata(self.session)
            outputs = [o.name for o in self.session.get_outputs()]
            if with_hallu and 'hallu' not in outputs:
                raise ValueError(f'{onnx_file} has no hallu output: export '
                                 'it with --with-hallu')
            self.backend = f'onnxruntime ({osp.basename(onnx_file)})'
        else:
            self.model = build_student(cfg, checkpoint)
            if with_hallu and getattr(self.model, 'hallu_head',
                                      None) is None:
                raise ValueError('the model has no hallu_head: a vanilla '
                                 'student hallucinates nothing')
            self.backend = 'PyTorch' + (
                f' ({osp.basename(checkpoint)})' if checkpoint else
                ' (random weights)')

    @torch.no_grad()
    def __call__(
            self,
            frames: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Scores ``(K, )`` and hallucination ``(S, D)`` (or ``None``) of
        pixels ``(F, 3, H, W)``."""
        if self.session is not None:
            return self._run_onnx(frames)
        deploy = DeployModel(self.model, len(frames), self.with_hallu)
        out = deploy(torch.from_numpy(frames)[None])
        if self.with_hallu:
            return out[0][0].numpy(), out[1][0].numpy()
        return out[0].numpy(), None

    def _run_onnx(self, frames: np.ndarray):
        expected = self.session.get_inputs()[0].shape[1:]
        pixels = frames[0] if len(expected) == 3 else frames
        if tuple(pixels.shape) != tuple(expected):
            raise ValueError(
                f'the test pipeline gives frames {tuple(frames.shape)} but '
                f'the ONNX model takes {tuple(expected)} per sample')
        outputs = self.session.run(None, {'imgs': pixels[None]})
        names = [o.name for o in self.session.get_outputs()]
        result = dict(zip(names, outputs))
        hallu = result['hallu'][0] if self.with_hallu else None
        return result['scores'][0], hallu


def topk(scores: np.ndarray, k: int,
         label_map: Optional[Sequence[str]] = None) -> List[Dict]:
    """The ``k`` best classes: ``rank``, ``index``, ``name``, ``score``."""
    scores = np.asarray(scores).reshape(-1)
    if label_map is not None and len(label_map) != len(scores):
        raise ValueError(f'the label map has {len(label_map)} names but the '
                         f'model scores {len(scores)} classes')
    order = np.argsort(-scores, kind='stable')[:max(1, k)]
    return [
        dict(
            rank=rank + 1,
            index=int(i),
            name=label_map[i] if label_map is not None else str(int(i)),
            score=float(scores[i])) for rank, i in enumerate(order)
    ]


def inference(cfg: Config,
              inputs: Sequence[PathLike],
              checkpoint: Optional[PathLike] = None,
              onnx_file: Optional[PathLike] = None,
              k: int = 5,
              label_map: Optional[Union[PathLike, Sequence[str]]] = None,
              with_hallu: bool = False) -> List[Dict]:
    """Top-k prediction for each input (``tools/inference.py``).

    Args:
        cfg (Config): The config.
        inputs (Sequence[str]): Videos, frame directories or images.
        checkpoint (str, optional): Student checkpoint (PyTorch).
        onnx_file (str, optional): Exported model (onnxruntime) instead.
        k (int): How many classes.
        label_map (str | list, optional): Class names; default: the
            config's ``label_map``, else indices.
        with_hallu (bool): Also return the hallucinated representation.

    Returns:
        list[dict]: Per input ``input``, ``kind``, ``frames`` (shape),
        ``topk`` (see :func:`topk`), ``scores`` and ``hallu`` (``(S, D)``
        or ``None``).
    """
    names = load_label_map(label_map) if label_map is not None else \
        config_label_map(cfg)
    predictor = Predictor(cfg, checkpoint, onnx_file, with_hallu)
    results = []
    for path in inputs:
        frames = load_frames(cfg, path)
        scores, hallu = predictor(frames)
        results.append(
            dict(
                input=os.fspath(path),
                kind=input_kind(path),
                frames=list(frames.shape),
                backend=predictor.backend,
                topk=topk(scores, k, names),
                scores=scores,
                hallu=hallu))
    return results
