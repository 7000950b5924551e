"""The benchmark's report: ``benchmark.md`` (tables) and ``benchmark.json``."""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from hallucinet_plugin.utils.report import markdown_table


# -------------------------------------------------------------- reporting
class _Ratio(float):
    """A ratio: printed with three decimals, where a 2 % target shows."""


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    if value is None or not np.isfinite(value):
        return 'n/a'
    if isinstance(value, _Ratio):
        return f'{value:.3f}'
    if abs(value) >= 100:
        return f'{value:.0f}'
    if abs(value) >= 10:
        return f'{value:.1f}'
    if abs(value) >= 0.1:
        return f'{value:.2f}'
    return f'{value:.3g}'


def _table(header: List[str], rows: List[List]) -> str:
    return markdown_table(header, rows, _fmt)


def format_report(result: Dict) -> str:
    """The Markdown report: per device the cost table and the ratios."""
    meta = result['meta']
    batch = meta['batch']
    out = ['# Cost', '']
    out.append(f"{meta['date']}, torch {meta['torch']}"
               + (f", onnxruntime {meta['onnxruntime']}"
                  if 'onnxruntime' in meta else '') + f". {meta['weights']}.")
    out.append(f"Latency: median and IQR over {meta['repeats']} calls "
               f"(after {meta['warmup']} warm-up) at batch 1, over "
               f"{meta['batch_repeats']} calls (after "
               f"{meta['batch_warmup']}) at batch {batch}. FLOPs: "
               f"{meta['flops']}.")
    for device, res in result['devices'].items():
        onnx = 'onnx_latency_ms' in res['rows'][0]
        out += ['', f'## {device}: {res["name"]}', '']
        out.append('Peak memory: ' + meta['memory'][device] + '.')
        out.append('')
        header = [
            'model', 'role', 'input', 'params (M)', 'GFLOPs',
            'latency b1 (ms)', 'IQR b1 (ms)', f'b{batch} (ms/sample)',
            f'IQR b{batch} (ms/sample)', f'throughput b{batch} (/s)',
            'peak mem b1 (MB)', f'peak mem b{batch} (MB)'
        ]
        if onnx:
            header += [
                'ORT b1 (ms)', 'ORT IQR b1 (ms)',
                f'ORT b{batch} (ms/sample)',
                f'ORT throughput b{batch} (/s)', 'ORT / PyTorch b1 paired',
                'paired IQR', f'ORT / PyTorch b{batch}'
            ]
        rows = []
        for r in res['rows']:
            row = [
                r['name'], r['role'], r['input'], r['params_m'],
                f'{r["gflops"]:.4g}',
                r['latency_ms'], r['latency_iqr_ms'],
                r['batch_ms_per_sample'], r['batch_iqr_ms_per_sample'],
                r['throughput_per_s'], r['peak_mem_mb'],
                r['peak_mem_batch_mb']
            ]
            if onnx:
                row += [
                    r['onnx_latency_ms'], r['onnx_latency_iqr_ms'],
                    r['onnx_batch_ms_per_sample'],
                    r['onnx_throughput_per_s'],
                    _Ratio(r['onnx_vs_torch_paired']),
                    _Ratio(r['onnx_vs_torch_paired_iqr']),
                    _Ratio(r['onnx_batch_ms_per_sample'] /
                           r['batch_ms_per_sample'])
                ]
            rows.append(row)
        out.append(_table(header, rows))
        int8 = [r for r in res['rows'] if 'int8_latency_ms' in r]
        if int8:
            out += ['', '### INT8 students (onnxruntime)', '']
            out.append('Static post-training quantisation (QDQ, per-channel '
                       'int8 weights, uint8 activations; calibrated on the '
                       "benchmark's random pixels: speed does not depend on "
                       'the calibration). INT8 / float paired: batch-1 '
                       'latency ratio timed interleaved.')
            out.append('')
            out.append(_table(
                ['model', 'float ORT b1 (ms)', 'INT8 b1 (ms)',
                 'INT8 / float paired', 'paired IQR',
                 f'INT8 b{batch} (ms/sample)', 'float file (MB)',
                 'INT8 file (MB)', 'INT8 / float size'],
                [[r['name'], r['onnx_latency_ms'], r['int8_latency_ms'],
                  _Ratio(r['int8_vs_float_paired']),
                  _Ratio(r['int8_vs_float_paired_iqr']),
                  r['int8_batch_ms_per_sample'], r['onnx_mb'],
                  r['int8_mb'], _Ratio(r['int8_size_ratio'])]
                 for r in int8]))
        ratio_header = [
            'model', 'reference', 'params', 'GFLOPs', 'latency b1',
            f'ms/sample b{batch}', f'peak mem b{batch}'
        ]

        def ratio_rows(ratios, extra=()):
            keys = ('params_m', 'gflops', 'latency_ms',
                    'batch_ms_per_sample', 'peak_mem_batch_mb', *extra)
            return [[r['name'], r['reference']] +
                    [_Ratio(r[k]) for k in keys] for r in ratios]

        paired_header = ratio_header + [
            'paired latency b1', 'paired IQR', 'paired best'
        ]
        paired_keys = ('paired_latency', 'paired_latency_iqr',
                       'paired_latency_best')
        if any('onnx_latency_ms' in r
               for r in (res['student_teacher'] or []) +
               (res['hallucinet_vanilla'] or [])):
            paired_header = paired_header + ['ORT latency b1']
            paired_keys = paired_keys + ('onnx_latency_ms', )
        teacher_header, teacher_keys = paired_header, paired_keys
        if all('int8_latency_ms' in r for r in res['student_teacher'] or
               [{}]):
            teacher_header = paired_header + ['INT8 ORT latency b1']
            teacher_keys = paired_keys + ('int8_latency_ms', )
        if res['student_teacher']:
            out += ['', '### Student / teacher', '']
            out.append('Paired: batch-1 latency ratio timed interleaved '
                       '(student frame(s) against the teacher clip), median '
                       'and IQR of the per-call ratios, and the ratio of the '
                       'fastest calls (best).')
            out.append('')
            out.append(
                _table(teacher_header,
                       ratio_rows(res['student_teacher'], teacher_keys)))
        if res['hallucinet_vanilla']:
            out += ['', '### HalluciNet / vanilla student', '']
            out.append('Reference: a vanilla config of the run with the '
                       'same backbone, frames and input, else the '
                       "config's vanilla twin (same backbone and "
                       'classifier, no hallucination head). Paired: as '
                       'above.')
            out.append('')
            out.append(
                _table(paired_header,
                       ratio_rows(res['hallucinet_vanilla'], paired_keys)))
    return '\n'.join(out) + '\n'


def write_report(result: Dict, out_dir: str) -> Tuple[str, str]:
    """Write ``benchmark.md`` and ``benchmark.json`` to ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    md = osp.join(out_dir, 'benchmark.md')
    js = osp.join(out_dir, 'benchmark.json')
    with open(md, 'w') as f:
        f.write(format_report(result))
    with open(js, 'w') as f:
        json.dump(result, f, indent=1)
    return md, js
