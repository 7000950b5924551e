"""Cost of a model: parameters, FLOPs, latency, peak memory.

The single place where the project measures cost (``tools/benchmark.py``,
the demo's cost table). What is measured, and how:

Parameters
    Every parameter of the deploy module (for a student: backbone,
    hallucination head and classifier, no teacher).
FLOPs
    PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (kept in
    step with PyTorch's operators, no extra dependency) over one call at
    batch 1. It counts matrix products and convolutions (a multiply-add
    is 2 FLOPs), not element-wise operations, pooling or normalisation.
Latency and throughput
    Wall time of the deploy module (normalisation, network, classifier's
    ``average_clip``) on random pixels, after warm-up calls, over several
    repetitions; median and inter-quartile range (IQR). Batch 1 gives the
    latency per sample; a larger batch the time per sample and the
    throughput (samples/s = batch / median batch time). CUDA calls are
    synchronised before the clock is read.
Paired latency ratio
    Each student against its teacher and against its vanilla student is
    timed interleaved at batch 1 (calls alternate, their order flips every
    repetition), so that the slow drifts of a shared machine hit both
    alike; the ratio is the median of the per-repetition ratios, and
    ``best`` the ratio of the fastest calls. Ratios of separately measured
    medians are reported too, but on a busy machine only the paired ones
    are worth comparing with a few-percent target.
Peak memory
    Bytes of the module's parameters and buffers plus the input, plus the
    peak of the memory the call allocates on top: on CUDA
    ``torch.cuda.max_memory_allocated`` (after ``reset_peak_memory_stats``)
    minus what was allocated before the call; on CPU the peak of the
    running sum of PyTorch's CPU allocator events (allocations and frees,
    in order) recorded by ``torch.profiler`` with ``profile_memory=True``:
    the memory held by PyTorch tensors, the CPU analogue of
    ``max_memory_allocated``. Memory that libraries allocate outside
    PyTorch's allocator (oneDNN scratch buffers, the interpreter) is not
    included; process RSS is not used because its peak is the process's
    lifetime peak, not the call's. onnxruntime's memory is not measured.
onnxruntime
    With ``onnx=True`` each deploy module is exported
    (:mod:`hallucinet_plugin.deploy.onnx_export`) and timed the same way in an
    onnxruntime session with as many intra-op threads as PyTorch uses; the
    batch-1 ratio onnxruntime / PyTorch is also timed paired (as above).
"""
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

FLOP_COUNTER = 'torch.utils.flop_counter.FlopCounterMode'


# ----------------------------------------------------------- measurements
def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_flops(fn: Callable, *args) -> int:
    """FLOPs of one call ``fn(*args)`` (multiply-add = 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args)
    return counter.get_total_flops()


def _device_of(args: Sequence) -> torch.device:
    return next((a.device for a in args if isinstance(a, torch.Tensor)),
                torch.device('cpu'))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _spread(times: List[float]) -> Dict[str, float]:
    """Median, min, max and inter-quartile range of ``times``."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [
        times[0]
    ] * 3
    return dict(
        median=statistics.median(times),
        min=min(times),
        max=max(times),
        iqr=quartiles[2] - quartiles[0])


@torch.no_grad()
def measure_latency(fn: Callable,
                    *args,
                    warmup: int = 3,
                    repeats: int = 10) -> Dict[str, float]:
    """Wall time of ``fn(*args)`` in milliseconds: median and spread.

    Returns:
        dict: ``median_ms``, ``min_ms``, ``max_ms``, ``iqr_ms`` over
        ``repeats`` calls after ``warmup`` calls.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    device = _device_of(args)
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn(*args)
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return {f'{k}_ms': v for k, v in _spread(times).items()}


@torch.no_grad()
def measure_latency_ratio(fn_ref: Callable,
                          fn: Callable,
                          *args,
                          warmup: int = 3,
                          repeats: int = 10,
                          device: Optional[torch.device] = None
                          ) -> Dict[str, float]:
    """Latency of ``fn`` relative to ``fn_ref`` on the same input, timed
    interleaved.

    The two alternate, and which goes first flips every repetition, so slow
    drifts of a shared machine (other jobs, clock changes) hit both alike.
    ``device`` (default: that of the tensor ``args``) is synchronised
    around each call.

    Returns:
        dict: ``median``, ``min``, ``max``, ``iqr`` of the per-repetition
        ratios ``time(fn) / time(fn_ref)``, the medians ``ref_ms`` and
        ``ms``, and ``best``: the ratio of the fastest calls (the least
        disturbed ones on a busy machine).
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    device = torch.device(device) if device is not None else _device_of(
        args)
    for _ in range(warmup):
        fn_ref(*args)
        fn(*args)
    ratios, ref_times, times = [], [], []
    for i in range(repeats):
        elapsed = {}
        order = (('ref', fn_ref), ('new', fn))
        for key, f in order if i % 2 == 0 else order[::-1]:
            _sync(device)
            start = time.perf_counter()
            f(*args)
            _sync(device)
            elapsed[key] = (time.perf_counter() - start) * 1000
        ratios.append(elapsed['new'] / elapsed['ref'])
        ref_times.append(elapsed['ref'])
        times.append(elapsed['new'])
    return dict(
        _spread(ratios),
        ref_ms=statistics.median(ref_times),
        ms=statistics.median(times),
        best=min(times) / min(ref_times))


def _cpu_allocator_peak(prof) -> int:
    """Peak of the running sum of the CPU allocator events of a profile."""
    results = getattr(getattr(prof, 'profiler', None), 'kineto_results',
                      None)
    if results is None:
        raise RuntimeError('this PyTorch profiler exposes no allocator '
                           'events (kineto_results); cannot measure CPU '
                           'peak memory')
    events = [(e.start_ns(), e.nbytes()) for e in results.events()
              if e.name() == '[memory]' and e.device_type().name == 'CPU']
    peak = held = 0
    for _, nbytes in sorted(events, key=lambda e: e[0]):
        held += nbytes
        peak = max(peak, held)
    return peak


@torch.no_grad()
def measure_peak_memory(fn: Callable, *args) -> int:
    """Bytes one call ``fn(*args)`` allocates at its peak on top of what
    was allocated before (see the module docstring for CPU and CUDA)."""
    device = _device_of(args)
    if device.type == 'cuda':
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn(*args)
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != 'cpu':
        raise ValueError(f'no peak memory measurement for {device.type}')
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(
            activities=activities, profile_memory=True) as prof:
        fn(*args)
    return _cpu_allocator_peak(prof)


def tensor_bytes(module: torch.nn.Module, *args) -> int:
    """Bytes of a module's parameters and buffers and of tensor ``args``."""
    tensors = [*module.parameters(), *module.buffers()]
    tensors += [a for a in args if isinstance(a, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def summarize_cost(name: str,
                   module: torch.nn.Module,
                   fn: Callable,
                   inputs: Sequence,
                   warmup: int = 3,
                   repeats: int = 10) -> Dict:
    """Parameters, GFLOPs and batch latency of ``fn(*inputs)``."""
    return dict(
        name=name,
        params_m=count_parameters(module) / 1e6,
        gflops=count_flops(fn, *inputs) / 1e9,
        **measure_latency(fn, *inputs, warmup=warmup, repeats=repeats))
