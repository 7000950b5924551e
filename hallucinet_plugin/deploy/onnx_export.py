"""Export of :class:`DeployModel` to ONNX and its verification against
PyTorch (tolerances: :data:`DEFAULT_ATOL`, on random inputs at batch 1
and 3 and on frames decoded from a real video)."""
import json
import os
import os.path as osp
import tempfile
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from ..utils.typing_utils import PathLike
from .deploy_model import DeployModel, build_deploy_model, input_shape
from .frames import load_frames
from .spec import resolve_size, student_input_spec

DEFAULT_ATOL = dict(scores=1e-4, hallu=1e-3)


DEFAULT_OPSET = 17


_METADATA_PREFIX = 'hallucinet.'


# ------------------------------------------------------------------- ONNX
def export_module(module: nn.Module,
                  example: torch.Tensor,
                  out_file: PathLike,
                  output_names: Sequence[str] = ('scores', ),
                  opset: int = DEFAULT_OPSET,
                  metadata: Optional[Dict[str, str]] = None) -> str:
    """Export ``module(example)`` to ONNX with a dynamic batch axis.

    Args:
        module (nn.Module): In eval mode.
        example (Tensor): An input ``(B, ...)``; every axis but the first
            is fixed in the file.
        out_file (str): The ``.onnx`` file.
        output_names (Sequence[str]): One name per output.
        opset (int): ONNX opset.
        metadata (dict, optional): ``metadata_props`` to store.

    Returns:
        str: ``out_file``.
    """
    import onnx

    out_file = os.fspath(out_file)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    dynamic = {name: {0: 'batch'} for name in ['imgs', *output_names]}
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # Shape checks in Python are constants of the trace, as intended:
        # only the batch axis is dynamic.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            module, (example, ),
            out_file,
            input_names=['imgs'],
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False)
    if metadata:
        proto = onnx.load(out_file, load_external_data=False)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.save(proto, out_file)
    onnx.checker.check_model(out_file)
    return out_file


def deploy_metadata(deploy: DeployModel, size: Tuple[int, int],
                    num_classes: int) -> Dict[str, str]:
    """The input layout stored in an exported file (``hallucinet.*``)."""
    layout = 'B,3,H,W' if deploy.num_frames == 1 else 'B,F,3,H,W'
    meta = dict(
        num_frames=deploy.num_frames,
        num_segments=deploy.num_segments,
        height=size[0],
        width=size[1],
        layout=layout,
        pixels='float32 0..255, channel order of the test pipeline',
        num_classes=num_classes,
        outputs=json.dumps(['scores', 'hallu'] if deploy.with_hallu else
                           ['scores']))
    return {_METADATA_PREFIX + k: str(v) for k, v in meta.items()}


def export_onnx(cfg: Config,
                checkpoint: Optional[PathLike],
                out_file: PathLike,
                with_hallu: bool = False,
                size: Optional[Sequence[int]] = None,
                opset: int = DEFAULT_OPSET) -> Tuple[DeployModel, str]:
    """Export a config's deploy path (``tools/export_onnx.py``).

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): Student checkpoint; ``None`` or
            ``'none'``: random weights.
        out_file (str): The ``.onnx`` file.
        with_hallu (bool): Second output ``hallu``, ``(B, S, D)``.
        size (Sequence[int], optional): ``(H, W)`` of the frames when the
            test pipeline does not fix it.
        opset (int): ONNX opset.

    Returns:
        tuple: The exported :class:`DeployModel` and the file.
    """
    if checkpoint is not None and os.fspath(checkpoint).lower() == 'none':
        checkpoint = None
    deploy = build_deploy_model(cfg, checkpoint, with_hallu)
    hw = resolve_size(cfg, size)
    example = torch.rand(1, *input_shape(deploy, hw)) * 255
    with torch.no_grad():
        num_classes = _first(deploy(example)).shape[1]
    names = ('scores', 'hallu') if with_hallu else ('scores', )
    export_module(deploy, example, out_file, names, opset,
                  deploy_metadata(deploy, hw, num_classes))
    return deploy, os.fspath(out_file)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def onnx_session(onnx_file: PathLike,
                 device: str = 'cpu',
                 threads: Optional[int] = None):
    """An onnxruntime session on ``device`` with ``threads`` intra-op
    threads (default: as many as PyTorch uses, for a fair comparison)."""
    import onnxruntime as ort

    onnx_file = os.fspath(onnx_file)
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    if device == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise RuntimeError('onnxruntime has no CUDAExecutionProvider '
                               '(install onnxruntime-gpu) for --device cuda')
        providers = ['CUDAExecutionProvider']
    else:
        providers = ['CPUExecutionProvider']
    return ort.InferenceSession(
        onnx_file, sess_options=options, providers=providers)


def onnx_metadata(session) -> Dict[str, str]:
    """The ``hallucinet.*`` metadata of a session's model."""
    props = session.get_modelmeta().custom_metadata_map
    return {
        k[len(_METADATA_PREFIX):]: v
        for k, v in props.items() if k.startswith(_METADATA_PREFIX)
    }


def compare_onnx(deploy: nn.Module,
                 session,
                 inputs: Dict[str, np.ndarray],
                 atol: Optional[Dict[str, float]] = None) -> Dict:
    """Run PyTorch and onnxruntime on the same inputs; raise on mismatch.

    Args:
        deploy (nn.Module): The PyTorch module that was exported.
        session: Its onnxruntime session.
        inputs (dict): name -> float32 pixels ``(B, ...)``.
        atol (dict, optional): Absolute tolerance per output name
            (:data:`DEFAULT_ATOL`).

    Returns:
        dict: name -> ``{output: max abs diff}`` and ``shapes``.

    Raises:
        AssertionError: An output differs by more than its tolerance; the
            message names the input, the output and the max abs diff.
    """
    atol = {**DEFAULT_ATOL, **(atol or {})}
    names = [o.name for o in session.get_outputs()]
    report = {}
    failures = []
    for name, pixels in inputs.items():
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        got = session.run(None, {'imgs': pixels})
        with torch.no_grad():
            ref = deploy(torch.from_numpy(pixels))
        ref = ref if isinstance(ref, (tuple, list)) else (ref, )
        diffs = {}
        for out_name, a, b in zip(names, got, ref):
            b = b.cpu().numpy()
            if a.shape != b.shape:
                raise AssertionError(
                    f'{name}: onnxruntime output {out_name} has shape '
                    f'{a.shape}, PyTorch {b.shape}')
            diffs[out_name] = float(np.abs(a - b).max())
            if diffs[out_name] > atol.get(out_name, DEFAULT_ATOL['hallu']):
                failures.append(
                    f'{name}: {out_name} max abs diff {diffs[out_name]:.3g} '
                    f'> tolerance {atol.get(out_name)}')
        report[name] = dict(diffs, shape=list(pixels.shape))
    if failures:
        raise AssertionError('onnxruntime and PyTorch disagree: ' +
                             '; '.join(failures))
    return report


def verify_onnx(deploy: DeployModel,
                onnx_file: PathLike,
                frames: Optional[np.ndarray] = None,
                atol: Optional[Dict[str, float]] = None,
                seed: int = 0,
                session=None) -> Dict:
    """Check an exported deploy model against PyTorch (``--verify``).

    Random pixels at batch 1 and 3 (the dynamic batch axis) and, when
    given, real decoded ``frames`` (one sample: ``(F, 3, H, W)`` or
    ``(3, H, W)``).

    Args:
        session (optional): An onnxruntime session of ``onnx_file``
            already open.

    Returns:
        dict: See :func:`compare_onnx`.
    """
    session = session or onnx_session(onnx_file)
    shape = session.get_inputs()[0].shape[1:]
    if not all(isinstance(s, int) for s in shape):
        raise ValueError(f'{onnx_file}: only the batch axis may be dynamic, '
                         f'input shape {session.get_inputs()[0].shape}')
    rng = np.random.default_rng(seed)
    inputs = {
        f'random batch {b}': rng.uniform(0, 255, (b, *shape))
        for b in (1, 3)
    }
    if frames is not None:
        frames = np.asarray(frames, dtype=np.float32)
        if tuple(frames.shape) != tuple(shape):
            raise ValueError(
                f'decoded frames {tuple(frames.shape)} do not fit the '
                f'exported input {tuple(shape)} (another size or frame '
                'count: pass --student-size, or a video of that size)')
        inputs['decoded frames'] = frames[None]
    return compare_onnx(deploy, session, inputs, atol)


def write_test_video(path: PathLike,
                     size: Tuple[int, int],
                     num_frames: int = 32,
                     fps: int = 25) -> str:
    """A small real mp4 (moving colour gradient), ``size`` = ``(h, w)``,
    for checking an export on decoded frames when no video is at hand."""
    import cv2

    path = os.fspath(path)
    h, w = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'cannot open a video writer for {path}')
    ys, xs = np.mgrid[0:h, 0:w]
    for t in range(num_frames):
        frame = np.stack([(xs * 255 // max(w - 1, 1) + 8 * t) % 256,
                          (ys * 255 // max(h - 1, 1)) % 256,
                          np.full_like(xs, (16 * t) % 256)], axis=-1)
        writer.write(frame.astype(np.uint8))
    writer.release()
    return path


def verify_export(cfg: Config,
                  deploy: DeployModel,
                  onnx_file: PathLike,
                  video: Optional[PathLike] = None,
                  atol: Optional[Dict[str, float]] = None) -> Dict:
    """:func:`verify_onnx` with frames of ``video`` decoded by the test
    pipeline; without ``video``, of a generated one at the exported
    size."""

    session = onnx_session(onnx_file)
    shape = session.get_inputs()[0].shape[1:]
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            size = tuple(shape[-2:])
            if student_input_spec(cfg)['size'] is not None:
                # decord pads frame rows to 32 pixels and then fails on a
                # size mismatch; the pipeline resizes/crops anyway.
                size = tuple(-(-s // 32) * 32 for s in size)
            video = write_test_video(osp.join(tmp, 'check.mp4'), size)
        frames = load_frames(cfg, video)
    if len(shape) == 3:
        # [1, 3, H, W] -> [3, H, W], the one-frame layout
        frames = frames[0]
    return verify_onnx(deploy, onnx_file, frames, atol, session=session)
