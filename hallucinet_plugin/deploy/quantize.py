"""INT8 students: static post-training quantisation of an exported ONNX
student with onnxruntime's quantiser (QDQ, per-channel int8 weights, uint8
activations), calibrated on frames of training videos through the config's
test pipeline (what the deployed model is fed), and the comparison of the
INT8 model with the float one on a video list. See
docs/user_guides/deployment.md."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.fileio import list_from_file

from ..utils.typing_utils import PathLike
from .frames import load_frames
from .onnx_export import onnx_session


def read_video_list(ann_file: PathLike, prefix: Optional[str] = None,
                    limit: Optional[int] = None) -> List[Tuple[str, int]]:
    """``(path, label)`` of a list's videos (``path [label]`` per line;
    label -1 when absent), the first ``limit`` of them.

    Raises:
        FileNotFoundError: Naming the list, or a listed video and its line.
        ValueError: A label that is not an integer, naming the line.
    """
    ann_file = os.fspath(ann_file)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'video list not found: {ann_file}')
    videos = []
    for number, line in enumerate(list_from_file(ann_file), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            label = int(fields[1]) if len(fields) > 1 else -1
        except ValueError:
            raise ValueError(f'{ann_file}, line {number}: the label '
                             f'{fields[1]!r} is not an integer') from None
        path = osp.join(prefix, fields[0]) if prefix else fields[0]
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{ann_file}, line {number}: {path} not found (give '
                '--calib-prefix / the data prefix the paths are under)')
        videos.append((path, label))
        if limit is not None and len(videos) == limit:
            break
    if not videos:
        raise ValueError(f'{ann_file}: no video listed')
    return videos


def config_val_list(cfg: Config) -> Tuple[str, Optional[str]]:
    """The config's validation list and its video prefix."""
    dataset = cfg.val_dataloader.dataset
    while 'dataset' in dataset:  # RepeatDataset and its kind
        dataset = dataset['dataset']
    return dataset['ann_file'], (dataset.get('data_prefix') or {}).get(
        'video')


class _Calibration:
    """onnxruntime's ``CalibrationDataReader`` protocol over frames, shaped
    as the model takes one sample (``(3, H, W)`` for one frame)."""

    def __init__(self, name: str, shape: Sequence,
                 frames: Sequence[np.ndarray]) -> None:
        self.name, self.rank = name, len(shape)
        self.frames = iter(frames)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        frames = next(self.frames, None)
        if frames is None:
            return None
        if self.rank == 4:  # (B, 3, H, W): one frame per prediction
            frames = frames[0]
        return {self.name: frames[None]}


def quantize_int8(float_file: PathLike, int8_file: PathLike,
                  frames: Sequence[np.ndarray]) -> str:
    """Quantise an exported student statically.

    Args:
        float_file (str): The float ONNX file (``export_onnx``).
        int8_file (str): The INT8 file to write.
        frames (Sequence[np.ndarray]): Calibration inputs, one
            prediction's pixels each (``load_frames``).

    Returns:
        str: ``int8_file``.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if not frames:
        raise ValueError('no calibration frames')
    float_file, int8_file = os.fspath(float_file), os.fspath(int8_file)
    model = onnx.load(float_file)
    name = model.graph.input[0].name
    shape = model.graph.input[0].type.tensor_type.shape.dim
    # Shape inference and graph folding first, as onnxruntime advises.
    prepared = int8_file + '.prep.onnx'
    quant_pre_process(float_file, prepared, skip_symbolic_shape=True)
    try:
        quantize_static(
            prepared,
            int8_file,
            _Calibration(name, shape, frames),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Class probabilities stay float: uint8 would round them to
            # steps of 1/255 (their sum to 0.996).
            nodes_to_exclude=[
                n.name for n in onnx.load(prepared).graph.node
                if n.op_type == 'Softmax'
            ])
    finally:
        if osp.exists(prepared):
            os.remove(prepared)
    # The deploy metadata (input layout, classes) travels along.
    quantized = onnx.load(int8_file)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    onnx.save(quantized, int8_file)
    return int8_file


def _softmax_if_logits(scores: np.ndarray) -> np.ndarray:
    """Class probabilities (the exported scores are probabilities unless
    the head averages raw scores)."""
    if np.all(scores >= 0) and np.allclose(scores.sum(-1), 1, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def compare_int8(cfg: Config, float_file: PathLike, int8_file: PathLike,
                 videos: Sequence[Tuple[str, int]]) -> Dict:
    """The INT8 student against the float one on ``videos``.

    Returns:
        dict: ``videos``; ``top1_float``, ``top1_int8`` (percent, over the
        labelled videos); ``agreement`` (percent of videos whose top-1
        class is the same); ``max_prob_diff``, ``mean_prob_diff`` (class
        probabilities); with a ``hallu`` output, ``hallu_cosine_mean`` and
        ``hallu_cosine_min`` (over videos, of the cosine similarity of the
        hallucinated representations); the two files' sizes in bytes.
    """
    from .inference import Predictor
    with_hallu = 'hallu' in [
        o.name for o in onnx_session(float_file).get_outputs()
    ]
    models = [
        Predictor(cfg, onnx_file=f, with_hallu=with_hallu)
        for f in (float_file, int8_file)
    ]
    hits, labelled, agree, diffs, cosines = [0, 0], 0, 0, [], []
    for path, label in videos:
        frames = load_frames(cfg, path)
        outs = [model(frames) for model in models]
        probs = [_softmax_if_logits(scores) for scores, _ in outs]
        tops = [int(p.argmax()) for p in probs]
        if label >= 0:
            labelled += 1
            hits = [h + (t == label) for h, t in zip(hits, tops)]
        agree += tops[0] == tops[1]
        diffs.append(np.abs(probs[0] - probs[1]))
        if with_hallu:
            a, b = (out[1].ravel() for out in outs)
            cosines.append(
                float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b),
                                  1e-12)))
    diffs = np.stack(diffs)
    report = dict(
        videos=len(videos),
        labelled=labelled,
        top1_float=100.0 * hits[0] / max(labelled, 1),
        top1_int8=100.0 * hits[1] / max(labelled, 1),
        agreement=100.0 * agree / len(videos),
        max_prob_diff=float(diffs.max()),
        mean_prob_diff=float(diffs.mean()),
        float_bytes=osp.getsize(float_file),
        int8_bytes=osp.getsize(int8_file))
    if cosines:
        report['hallu_cosine_mean'] = float(np.mean(cosines))
        report['hallu_cosine_min'] = float(np.min(cosines))
    return report


def calibration_frames(cfg: Config,
                       videos: Sequence[Tuple[str, int]]) -> List:
    """Each video's frames through the config's test pipeline."""
    return [load_frames(cfg, path) for path, _ in videos]
