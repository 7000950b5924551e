"""What the teacher feature bank buys, measured (``tools/benchmark.py
--training``).

Two comparisons, each in one run on one machine, so only their ratios are
read:

- Training speed: iterations per second of real mmengine training (the
  config's own data pipeline, data-loader workers, model, optimizer) for the
  vanilla 2D student, HalluciNet with its online teacher, and HalluciNet
  from the feature bank (the same config with :func:`use_teacher_bank`).
  Each runs ``warmup + iters`` iterations; the first ``warmup`` (data-loader
  start, allocator warm-up) are not counted. mmengine's own per-iteration
  time (data and step, ``train/time``) is what is averaged.
- Extraction: clips per second of ``extract_teacher_features`` over a
  split (decoding in workers, teacher forward, LMDB writes), against the
  teacher's bare forward on random clips already in memory, at the same
  batch sizes. Worker and model start-up are counted in extraction, as the
  user waits for them.
"""
import copy
import tempfile
import time
import uuid
from typing import Callable, Dict, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from hallucinet_plugin.feature_bank import (
    bank_settings,
    build_frozen_teacher,
    collect_videos,
    extract_teacher_features,
    use_teacher_bank,
)
from hallucinet_plugin.utils.report import markdown_table


def training_speed(cfg: Config,
                   iters: int = 20,
                   warmup: int = 5,
                   work_dir: Optional[str] = None) -> Dict:
    """Iterations per second of mmengine training with ``cfg``.

    Args:
        cfg (Config): A training config (not changed).
        iters (int): Timed iterations.
        warmup (int): Iterations run first and not timed.
        work_dir (str, optional): Where the runner writes its logs; a
            temporary directory when None.

    Returns:
        dict: ``iters_per_s``, ``s_per_iter`` (mean), ``data_s_per_iter``
        (mean data-loading wait) and ``iters`` timed.
    """
    if iters < 1 or warmup < 0:
        raise ValueError('iters must be >= 1 and warmup >= 0')
    cfg = copy.deepcopy(cfg)
    total = warmup + iters
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=total)
    sampler = cfg.train_dataloader.get('sampler') or {}
    if sampler.get('type', 'DefaultSampler') in ('DefaultSampler',
                                                 'mmengine.DefaultSampler'):
        # mmengine's iteration loop sleeps 2 s each time the data-loader
        # iterator runs out (an epoch ends); with few videos per epoch that
        # sleep, not the data, was most of the measured data wait. An
        # endless sampler never runs out.
        cfg.train_dataloader.sampler = dict(
            type='InfiniteSampler', shuffle=sampler.get('shuffle', True))
    for key in ('val', 'test'):
        cfg[f'{key}_cfg'] = cfg[f'{key}_dataloader'] = None
        cfg[f'{key}_evaluator'] = None
    cfg.param_scheduler = None
    hooks = dict(cfg.get('default_hooks') or {})
    hooks['checkpoint'] = dict(
        type='CheckpointHook', interval=total + 1, save_last=False)
    hooks['logger'] = dict(type='LoggerHook', interval=total + 1)
    cfg.default_hooks = hooks
    cfg.log_level = 'WARNING'
    # mmengine keeps one visualizer per experiment name, which defaults to
    # the config and the second: a second runner started within the same
    # second would write into the first one's (removed) directory.
    cfg.experiment_name = f'training_speed_{uuid.uuid4().hex}'
    with tempfile.TemporaryDirectory() as tmp:
        cfg.work_dir = work_dir or tmp
        runner = Runner.from_cfg(cfg)
        runner.train()
        hub = runner.message_hub
        times = hub.get_scalar('train/time').data[0][warmup:total]
        data = hub.get_scalar('train/data_time').data[0][warmup:total]
    mean = float(times.mean())
    return dict(
        iters_per_s=1.0 / mean,
        s_per_iter=mean,
        data_s_per_iter=float(data.mean()),
        iters=int(len(times)))


def extraction_speed(cfg: Config,
                     splits=('train', ),
                     batch_size: int = 32,
                     workers: int = 2,
                     repeats: int = 1) -> Dict:
    """Clips per second of feature extraction vs the bare teacher forward.

    Args:
        cfg (Config): An online-teacher HalluciNet config with its
            ``teacher_ckpt``.
        splits (Sequence[str]): Splits extracted (into a temporary store).
        batch_size (int): Windows per teacher forward.
        workers (int): Decoding workers of the extraction.
        repeats (int): Passes of the bare forward over the same batches.

    Returns:
        dict: ``extract_clips_per_s``, ``forward_clips_per_s``, their
        ``ratio``, ``clips`` and ``videos``; ``teacher_build_s`` (building
        the teacher and loading its checkpoint, timed apart) and
        ``ratio_without_build`` (the ratio with that time taken out of
        extraction's: what a long extraction approaches).
    """
    settings = bank_settings(cfg)
    videos, _ = collect_videos(cfg, splits)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = extract_teacher_features(
            cfg,
            f'{tmp}/bank.lmdb',
            splits=splits,
            batch_size=batch_size,
            workers=workers,
            progress=False)
        extract_s = time.perf_counter() - start
    clips = result['windows']

    # The same batches (a video's windows, at most batch_size at a time),
    # already decoded and normalised: only the teacher runs.
    model = cfg.model
    start = time.perf_counter()
    extractor = build_frozen_teacher(model, settings)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    extractor = extractor.to(device)
    # What extraction spends before its first clip on building the teacher
    # and loading its checkpoint (seconds for a 3D-ResNeXt-101): a fixed
    # cost that a short benchmark weighs far more than a real dataset.
    build_s = time.perf_counter() - start
    scale = settings['view']['scale']
    if scale is None:
        raise ValueError(
            f'{cfg.filename}: HalluSplitViews has no teacher_scale, so the '
            'size of the teacher clips to time the bare forward on is '
            'unknown')
    # Extraction feeds the teacher one video's windows (at most batch_size)
    # at a time: the same batch here, as many clips in all.
    batch = min(batch_size, max(clips // max(len(videos), 1), 1))
    calls = max(clips // batch, 1)
    clip = torch.randn(
        1, batch, 3, settings['clip_len'], scale[1], scale[0], device=device)
    with torch.no_grad():
        extractor(clip)  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats * calls):
            extractor(clip)
        _sync(device)
        forward_s = (time.perf_counter() - start) / repeats
    extract_rate = clips / extract_s
    forward_rate = batch * calls / forward_s
    return dict(
        extract_clips_per_s=extract_rate,
        forward_clips_per_s=forward_rate,
        ratio=extract_rate / forward_rate,
        teacher_build_s=build_s,
        ratio_without_build=clips / max(extract_s - build_s, 1e-9) /
        forward_rate,
        clips=clips,
        videos=len(videos),
        batch=batch)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bank_benchmark(vanilla: Config,
                   online: Config,
                   store: str,
                   iters: int = 20,
                   warmup: int = 5,
                   rounds: int = 2,
                   extraction: bool = True,
                   log: Callable[[str], None] = print) -> Dict:
    """The feature bank's two targets, measured in one run.

    Args:
        vanilla (Config): The vanilla student's training config.
        online (Config): The HalluciNet config with its online teacher (and
            ``teacher_ckpt``); its bank variant is derived with
            :func:`use_teacher_bank`.
        store (str): The bank of ``online``'s teacher over its train split.
        iters (int): Timed training iterations per model.
        warmup (int): Untimed iterations first.
        rounds (int): Measurements per model, interleaved, every other
            round in reverse order; their mean time per iteration counts.
            Extraction is measured as many times, after the training.
        extraction (bool): Also measure extraction against the bare
            teacher forward.
        log (Callable): Progress messages.

    Returns:
        dict: ``training`` (per model, as :func:`training_speed`, over
        all rounds, plus each round's ``rounds`` iterations/s) and
        ``ratios`` (``bank/vanilla``, ``online/vanilla``, ``bank/online``
        iterations per second), ``ratio_rounds`` (each ratio within each
        round), and ``extraction`` (see :func:`extraction_speed`; rates
        averaged over rounds, each round's ratio in ``rounds``) when asked
        for.
    """
    bank = use_teacher_bank(copy.deepcopy(online), store)
    configs = {
        'vanilla': vanilla,
        'online teacher': online,
        'feature bank': bank
    }
    # Interleaved rounds, the order reversed every other round, so drifts
    # of the machine (and whatever the first run warms up) fall on all.
    runs: Dict[str, list] = {name: [] for name in configs}
    for r in range(rounds):
        order = list(configs) if r % 2 == 0 else list(configs)[::-1]
        for name in order:
            log(f'training speed, round {r + 1}/{rounds}: {name} '
                f'({warmup} + {iters} iterations)')
            runs[name].append(
                training_speed(configs[name], iters=iters, warmup=warmup))
    training = {}
    for name, rows in runs.items():
        s_per_iter = sum(r['s_per_iter'] for r in rows) / len(rows)
        training[name] = dict(
            iters_per_s=1.0 / s_per_iter,
            s_per_iter=s_per_iter,
            data_s_per_iter=sum(r['data_s_per_iter']
                                for r in rows) / len(rows),
            iters=sum(r['iters'] for r in rows),
            rounds=[r['iters_per_s'] for r in rows])
    rate = {k: v['iters_per_s'] for k, v in training.items()}
    pairs = (('feature bank', 'vanilla'), ('online teacher', 'vanilla'),
             ('feature bank', 'online teacher'))
    result = dict(
        training=training,
        ratios={f'{a} / {b}': rate[a] / rate[b]
                for a, b in pairs},
        # The same ratio within each round: its spread is the noise.
        ratio_rounds={
            f'{a} / {b}': [
                x / y for x, y in zip(training[a]['rounds'],
                                      training[b]['rounds'])
            ]
            for a, b in pairs
        })
    if extraction:
        passes = []
        for r in range(rounds):
            log(f'extraction speed, round {r + 1}/{rounds}: '
                'extract_teacher_features vs bare forward')
            passes.append(extraction_speed(online))
        ext = dict(passes[0])
        for key in ('extract_clips_per_s', 'forward_clips_per_s',
                    'teacher_build_s', 'ratio_without_build'):
            ext[key] = sum(p[key] for p in passes) / len(passes)
        ext['ratio'] = ext['extract_clips_per_s'] / ext['forward_clips_per_s']
        ext['rounds'] = [p['ratio'] for p in passes]
        ext['rounds_without_build'] = [
            p['ratio_without_build'] for p in passes
        ]
        result['extraction'] = ext
    return result


def _spread(values) -> str:
    values = list(values or [])
    if len(values) < 2:
        return '-'
    return f'{min(values):.2f}-{max(values):.2f}'


def format_bank_report(result: Dict) -> str:
    """Markdown tables of :func:`bank_benchmark`'s result."""
    tables = [
        markdown_table(
            ['training', 'iterations/s', 's/iteration',
             'data wait s/iteration'],
            [[name, f"{row['iters_per_s']:.2f}", f"{row['s_per_iter']:.3f}",
              f"{row['data_s_per_iter']:.3f}"]
             for name, row in result['training'].items()]),
        markdown_table(
            ['ratio (iterations/s)', 'value', 'rounds (min-max)'],
            [[k, f'{v:.2f}',
              _spread(result.get('ratio_rounds', {}).get(k))]
             for k, v in result['ratios'].items()])
    ]
    ext = result.get('extraction')
    if ext:
        tables.append(
            markdown_table(['extraction', 'clips/s'], [
                [f"extract_teacher_features ({ext['clips']} clips, "
                 f"{ext['videos']} videos)",
                 f"{ext['extract_clips_per_s']:.1f}"],
                [f"bare teacher forward (batch {ext['batch']})",
                 f"{ext['forward_clips_per_s']:.1f}"],
                ['ratio', f"{ext['ratio']:.2f} (rounds: "
                 f"{_spread(ext.get('rounds'))})"],
                [f"ratio without the teacher's build and checkpoint load "
                 f"({ext['teacher_build_s']:.1f} s)",
                 f"{ext['ratio_without_build']:.2f} (rounds: "
                 f"{_spread(ext.get('rounds_without_build'))})"],
            ]))
    return '\n\n'.join(tables)
