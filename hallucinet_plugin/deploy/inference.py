"""Predict with a config's student: top-k classes of a video, a directory
of frames or an image (``tools/inference.py``), with the deploy model in
PyTorch from a checkpoint, or the exported ONNX file in onnxruntime."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

from ..utils.typing_utils import PathLike
from .deploy_model import DeployModel, build_student
from .frames import input_kind, load_frames
from .onnx_export import onnx_metadata, onnx_session


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
