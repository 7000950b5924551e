"""Cost of students and teachers: parameters, FLOPs, latency, memory.

Examples::

    # the paper pair (VGG11-bn 227 vs 3D-ResNeXt-101 16x112x112), random
    # weights, no data or checkpoint needed
    python tools/benchmark.py --preset paper
    # the demo pair, with onnxruntime beside PyTorch
    python tools/benchmark.py --preset demo --onnx
    # the efficient students, float and INT8 in onnxruntime
    python tools/benchmark.py --preset efficient-mobile --int8
    # any configs: each student, its teacher, its vanilla reference
    python tools/benchmark.py configs/vanilla_*.py configs/hallucinet_*.py
    # what the teacher feature bank buys: training iterations/s of vanilla,
    # online teacher and bank; extraction vs the bare teacher forward
    python tools/benchmark.py --training VANILLA_CONFIG HALLUCINET_CONFIG \
        --teacher-bank work_dirs/demo/teacher_bank.lmdb \
        --teacher-ckpt work_dirs/demo/teacher/teacher.pth
    # the feature bank at Kinetics scale: synthetic stores against np.memmap
    python tools/benchmark.py --preset bank-scale --out work_dirs/bank_scale
    # the same for configs whose data is not here (the paper's VGG11-bn and
    # 3D-ResNeXt-101): 24 generated 240x240 videos, random teacher weights
    python tools/benchmark.py --training \
        configs/vanilla_vgg11-bn_adam-30e_ucf101-static.py \
        configs/hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py \
        --generated 24

Writes ``benchmark.md`` and ``benchmark.json`` to ``--out`` and prints the
Markdown. The measurements are ``tools/analysis_tools/``'s, over the
package's cost primitives (``hallucinet_plugin/deploy/cost.py``: what is
measured and how).
"""
import argparse
import json
import os
import os.path as osp
import sys

# The profiler that measures CPU memory logs every start and stop (and a
# missing GPU) to stderr unless this is set before it first starts.
os.environ.setdefault('KINETO_LOG_LEVEL', '6')

import torch
from mmengine.config import DictAction

from analysis_tools.bank_benchmark import bank_benchmark, format_bank_report
from analysis_tools.benchmark import benchmark
from analysis_tools.benchmark_report import format_report, write_report
from analysis_tools.presets import PRESETS, preset_configs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Measure parameters, FLOPs, latency, throughput and '
        'peak memory of the students, their vanilla references and their '
        'teachers; write a Markdown and a JSON report.')
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument(
        '--preset',
        choices=sorted(PRESETS) + ['bank-scale'],
        help='built-in set of configs: ' + '; '.join(
            f'{k}: {v["description"]}' for k, v in PRESETS.items()) +
        '; bank-scale: the feature bank\'s reads, loader, open and writes '
        'on synthetic stores against np.memmap (no configs; see --sizes)')
    parser.add_argument(
        '--sizes',
        type=int,
        nargs='+',
        default=[10000, 50000, 200000],
        help='bank-scale: videos per store at the smallest --windows')
    parser.add_argument(
        '--windows',
        type=int,
        nargs='+',
        default=[4, 72],
        help='bank-scale: windows per video (72: a 10-s Kinetics clip)')
    parser.add_argument(
        '--w72-size',
        type=int,
        default=10000,
        help='bank-scale: videos per store at the other --windows')
    parser.add_argument(
        '--dim', type=int, default=2048, help='bank-scale: feature width')
    parser.add_argument(
        '--reads',
        type=int,
        default=12000,
        help='bank-scale: random reads per method')
    parser.add_argument(
        '--loader-samples',
        type=int,
        default=12800,
        help='bank-scale: samples per DataLoader pass')
    parser.add_argument(
        '--device',
        nargs='+',
        choices=['cpu', 'cuda'],
        help='devices, measured one after the other (default: cpu, and '
        'cuda when available)')
    parser.add_argument(
        '--batch',
        type=int,
        default=32,
        help='larger batch for time per sample, throughput and memory')
    parser.add_argument(
        '--warmup', type=int, default=3, help='warm-up calls at batch 1')
    parser.add_argument(
        '--repeats', type=int, default=20, help='timed calls at batch 1')
    parser.add_argument(
        '--batch-warmup',
        type=int,
        default=1,
        help='warm-up calls at --batch')
    parser.add_argument(
        '--batch-repeats',
        type=int,
        default=5,
        help='timed calls at --batch')
    parser.add_argument(
        '--onnx',
        action='store_true',
        help='also export each model and time it in onnxruntime')
    parser.add_argument(
        '--int8',
        action='store_true',
        help='also quantise each student to INT8 (onnxruntime, static, QDQ) '
        'and time it beside the float export (implies --onnx)')
    parser.add_argument(
        '--out',
        help='report directory (default: work_dirs/benchmark/<preset or '
        '"configs">)')
    parser.add_argument(
        '--student-size',
        type=int,
        nargs='+',
        metavar='H [W]',
        help='student frame size when the test pipeline does not fix it')
    parser.add_argument(
        '--teacher-shape',
        type=int,
        nargs=3,
        metavar=('T', 'H', 'W'),
        help='teacher clip when the train pipeline does not say')
    parser.add_argument(
        '--threads', type=int, help='PyTorch (and onnxruntime) CPU threads')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, key=value')
    parser.add_argument(
        '--training',
        nargs=2,
        metavar=('VANILLA', 'HALLUCINET'),
        help='measure training iterations/s of the vanilla config, the '
        'HalluciNet config with its online teacher and the same from '
        '--teacher-bank, and extraction vs the bare teacher forward')
    parser.add_argument(
        '--teacher-bank',
        metavar='STORE',
        help='the HALLUCINET config\'s feature bank (with --training)')
    parser.add_argument(
        '--teacher-ckpt',
        help='with --training: the HALLUCINET config\'s teacher checkpoint '
        '(overrides the checkpoint of model.teacher)')
    parser.add_argument(
        '--generated',
        type=int,
        metavar='N',
        help='with --training: train on N generated videos instead of the '
        "configs' data, with a random-weight teacher checkpoint when the "
        "config's does not exist, and extract the bank first (no "
        'download; for configs whose data is not here, e.g. the paper\'s)')
    parser.add_argument(
        '--generated-size',
        type=int,
        default=240,
        help='with --generated: frame height and width (default 240, '
        "UCF101's height)")
    parser.add_argument(
        '--generated-frames',
        type=int,
        default=32,
        help='with --generated: frames per video')
    parser.add_argument(
        '--iters',
        type=int,
        default=30,
        help='timed training iterations per model (with --training)')
    parser.add_argument(
        '--rounds',
        type=int,
        default=2,
        help='with --training: interleaved measurements per model')
    parser.add_argument(
        '--no-extraction',
        action='store_true',
        help='with --training: skip the extraction measurement')
    args = parser.parse_args(argv)
    if args.training:
        if args.configs or args.preset:
            parser.error('--training takes its two configs itself')
        if not args.teacher_bank and not args.generated:
            parser.error('--training needs --teacher-bank (or --generated)')
        if args.teacher_bank and args.generated:
            parser.error('--generated extracts its own bank: leave out '
                         '--teacher-bank')
    elif args.generated:
        parser.error('--generated goes with --training')
    elif args.preset == 'bank-scale' and args.configs:
        parser.error('--preset bank-scale takes no configs')
    elif bool(args.configs) == bool(args.preset):
        parser.error('give config files or --preset, not both or neither')
    return args


def main_training(args: argparse.Namespace) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    configs = []
    for path in args.training:
        cfg = Config.fromfile(path)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        configs.append(cfg)
    if args.teacher_ckpt:
        configs[1].model.teacher.checkpoint = args.teacher_ckpt
    out = args.out or osp.join('work_dirs', 'benchmark', 'training')
    store, generated = args.teacher_bank, None

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.generated:
        from analysis_tools.bank_benchmark_data import prepare_generated
        *configs, store, generated = prepare_generated(
            *configs,
            work_dir=osp.join(out, 'generated'),
            num_videos=args.generated,
            num_frames=args.generated_frames,
            size=args.generated_size,
            log=log)
    result = bank_benchmark(
        *configs,
        store=store,
        iters=args.iters,
        rounds=args.rounds,
        extraction=not args.no_extraction,
        log=log)
    if generated:
        result['generated'] = generated
    report = format_bank_report(result)
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'training.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(out, 'training.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(report)
    print(f'wrote {out}/training.md and training.json')
    return result


def main_bank_scale(args: argparse.Namespace) -> list:
    from mmengine.registry import init_default_scope

    from analysis_tools.bank_scale import bank_scale, format_bank_scale
    init_default_scope('mmaction')
    out = args.out or osp.join('work_dirs', 'benchmark', 'bank_scale')
    os.makedirs(out, exist_ok=True)
    rows = bank_scale(
        osp.join(out, 'stores'),
        sizes=args.sizes,
        windows=args.windows,
        w72_size=args.w72_size,
        dim=args.dim,
        reads=args.reads,
        loader_samples=args.loader_samples,
        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    with open(osp.join(out, 'bank_scale.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    report = format_bank_scale(rows)
    with open(osp.join(out, 'bank_scale.md'), 'w') as f:
        f.write(report + '\n')
    print(report)
    print(f'wrote {out}/bank_scale.json and bank_scale.md')
    return rows


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.training:
        return main_training(args)
    if args.preset == 'bank-scale':
        return main_bank_scale(args)
    configs = args.configs
    student_size, teacher_shape = args.student_size, args.teacher_shape
    if args.preset:
        preset = preset_configs(args.preset)
        configs = preset['configs']
        student_size = student_size or preset['student_size']
        teacher_shape = teacher_shape or preset['teacher_shape']
    devices = args.device or (['cpu', 'cuda']
                              if torch.cuda.is_available() else ['cpu'])
    result = benchmark(
        configs,
        devices=devices,
        batch=args.batch,
        warmup=args.warmup,
        repeats=args.repeats,
        batch_warmup=args.batch_warmup,
        batch_repeats=args.batch_repeats,
        onnx=args.onnx,
        int8=args.int8,
        student_size=student_size,
        teacher_shape=teacher_shape,
        cfg_options=args.cfg_options,
        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = args.out or osp.join('work_dirs', 'benchmark', args.preset
                               or 'configs')
    md, js = write_report(result, out)
    print(format_report(result))
    print(f'wrote {md} and {js}')
    return result


if __name__ == '__main__':
    main()
