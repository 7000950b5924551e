"""Cost of a model: parameters, FLOPs, latency, peak memory.

FLOPs are counted with PyTorch's own ``torch.utils.flop_counter.
FlopCounterMode`` (kept in step with PyTorch's operators, no extra
dependency); it counts a multiply-add as 2 FLOPs.
"""
import statistics
import time
from typing import Callable, Dict, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


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


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


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
    device = next((a.device for a in args if isinstance(a, torch.Tensor)),
                  torch.device('cpu'))
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn(*args)
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [
        times[0]
    ] * 3
    return dict(
        median_ms=statistics.median(times),
        min_ms=min(times),
        max_ms=max(times),
        iqr_ms=quartiles[2] - quartiles[0])


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
