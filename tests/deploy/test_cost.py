"""The cost primitives of :mod:`hallucinet_plugin.deploy.cost`: FLOPs,
peak memory, the interleaved latency ratio."""
import torch

from hallucinet_plugin.deploy.cost import (
    count_flops,
    measure_latency_ratio,
    measure_peak_memory,
)


def test_peak_memory_cpu():
    """Three 4 MiB tensors alive at once: a 12 MiB peak."""
    n = 2**20  # float32: 4 MiB

    def fn():
        a = torch.ones(n)
        b = torch.ones(n)
        c = a + b
        return c.sum()

    peak = measure_peak_memory(fn)
    assert 12 * 2**20 <= peak < 12.5 * 2**20


def test_flops_of_linear():
    layer = torch.nn.Linear(10, 4)
    assert count_flops(layer, torch.ones(3, 10)) == 2 * 3 * 10 * 4


def test_latency_ratio_interleaves():
    calls = []

    def ref(x):
        calls.append('ref')

    def new(x):
        calls.append('new')

    res = measure_latency_ratio(ref, new, 0, warmup=1, repeats=4)
    assert calls == ['ref', 'new'] + ['ref', 'new', 'new', 'ref'] * 2
    assert set(res) >= {'median', 'iqr', 'min', 'max', 'ref_ms', 'ms',
                        'best'}
    assert res['min'] <= res['median'] <= res['max']
