"""The benchmark of ``tools/benchmark.py``: students against their teachers
and their vanilla twins, each deploy module measured with the package's
cost primitives (:mod:`hallucinet_plugin.deploy.cost`)."""
import copy
import datetime
import gc
import json
import os
import os.path as osp
import platform
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from hallucinet_plugin.deploy.cost import (
    FLOP_COUNTER,
    count_flops,
    count_parameters,
    measure_latency,
    measure_latency_ratio,
    measure_peak_memory,
    summarize_cost,
    tensor_bytes,
)
from hallucinet_plugin.deploy.deploy_model import (
    DeployModel,
    TeacherDeployModel,
    build_student,
    quiet_logger,
)
from hallucinet_plugin.deploy.onnx_export import export_module, onnx_session
from hallucinet_plugin.deploy.spec import (
    resolve_size,
    student_input_spec,
    teacher_input_spec,
    without_pretrained,
)
from hallucinet_plugin.utils.config import load_config

from .presets import CHECKOUT, preset_configs


# ------------------------------------------------------------ what to run
class Job:
    """One deploy module to measure: a student, a vanilla twin or a
    teacher.

    Args:
        name (str): Row name.
        role (str): ``'student'``, ``'vanilla twin'`` or ``'teacher'``.
        build (callable): Returns the module (random weights).
        shape (tuple): Per-sample input shape.
        key (str): Identity, so shared teachers and twins run once.
        info (dict): What the ratios need (``hallu``, ``teacher``,
            ``reference``, ``config``).
    """

    def __init__(self, name: str, role: str, build: Callable, shape: Tuple,
                 key: str, **info) -> None:
        self.name = name
        self.role = role
        self.build = build
        self.shape = tuple(shape)
        self.key = key
        self.info = info


def _key(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _describe_teacher(cfg) -> str:
    if isinstance(cfg, str):
        return osp.splitext(osp.basename(cfg))[0]
    backbone = cfg.get('backbone', cfg)
    name = str(backbone.get('type', cfg.get('type', 'teacher')))
    if 'depth' in backbone:
        name += f'-{backbone["depth"]}'
    if backbone.get('stage_blocks'):
        # A depth with fewer blocks per stage (the demo's tiny teacher).
        blocks = '-'.join(str(b) for b in backbone['stage_blocks'])
        name += f' (blocks {blocks})'
    return name


def _build_student_job(cfg: Config, num_frames: int) -> DeployModel:
    return DeployModel(build_student(cfg), num_frames).eval()


def _build_teacher_job(cfg: Config) -> TeacherDeployModel:
    """The 3D model of the config's :class:`FrozenTeacher`; its checkpoint
    is loaded (with HalluciNet's own loading code) only if the file
    exists."""
    init_default_scope('mmaction')
    model_cfg = without_pretrained(cfg.model)
    teacher_cfg = dict(model_cfg['teacher'])
    ckpt = teacher_cfg.get('checkpoint')
    preprocessor = None
    if model_cfg.get('data_preprocessor'):
        preprocessor = getattr(
            MODELS.build(model_cfg['data_preprocessor']), 'teacher', None)
    with quiet_logger():
        if not (ckpt and osp.isfile(ckpt)):
            teacher_cfg['checkpoint'] = None
        teacher = MODELS.build(teacher_cfg)
        if teacher_cfg['checkpoint'] is None:
            teacher.init_weights()
    return TeacherDeployModel(teacher.model, preprocessor).eval()


def _vanilla_twin(cfg: Config) -> Config:
    """The same backbone and classifier without hallucination: no teacher,
    no hallu head, the classifier on the student features."""
    twin = copy.deepcopy(cfg)
    model = twin.model
    in_channels = model.hallu_head.in_channels
    model.hallu_head = None
    model.teacher = None
    model.fusion = 'concat'
    model.cls_head.in_channels = in_channels
    return twin


def plan_jobs(configs: Sequence[Tuple[str, Config]],
              student_size: Optional[Sequence[int]] = None,
              teacher_shape: Optional[Sequence[int]] = None) -> List[Job]:
    """The modules to measure for ``configs``, in table order.

    Each config gives its student; a HalluciNet config also its teacher
    (``model.teacher``; shared teachers once) and its vanilla reference: a
    vanilla config among the inputs with the same backbone, frames and
    input, else its vanilla twin (:func:`_vanilla_twin`), measured too.

    Args:
        configs (Sequence[tuple]): ``(name, Config)`` pairs.
        student_size (Sequence[int], optional): ``(H, W)`` of the student
            frames, for every config (default: each test pipeline's).
        teacher_shape (Sequence[int], optional): ``(T, H, W)`` of a teacher
            clip (default: each train pipeline's).

    Returns:
        list[Job]: Students, twins and teachers.
    """
    students, twins, teachers = [], {}, {}
    for index, (name, cfg) in enumerate(configs):
        model = cfg.model
        spec = student_input_spec(cfg)
        size = resolve_size(cfg, student_size)
        frames = spec['num_frames']
        shape = (3, *size) if frames == 1 else (frames, 3, *size)
        hallu = bool(model.get('hallu_head'))
        fps = model.get('frames_per_segment', 1)
        backbone = _key(without_pretrained(model.backbone))
        info = dict(config=name, hallu=hallu, teacher=None, reference=None,
                    vanilla_key=None)
        if model.get('teacher'):
            tshape = teacher_shape or teacher_input_spec(cfg)
            if tshape is None:
                raise ValueError(
                    f'{name}: cannot tell the teacher clip size (no '
                    'HalluSampleFrames/HalluSplitViews in the train '
                    'pipeline): give --teacher-shape T H W')
            t, h, w = (int(v) for v in tshape)
            tkey = _key([without_pretrained(dict(teacher=model.teacher)),
                         t, h, w,
                         spec['num_segments']])
            if tkey not in teachers:
                teachers[tkey] = Job(
                    f'teacher {_describe_teacher(model.teacher.model)}',
                    'teacher',
                    lambda cfg=cfg: _build_teacher_job(cfg),
                    (spec['num_segments'], 3, t, h, w),
                    tkey,
                    config=name)
            info['teacher'] = tkey
        skey = _key([backbone, fps, shape])
        if not hallu:
            info['vanilla_key'] = skey
        job = Job(
            name,
            'student',
            lambda cfg=cfg, f=frames: _build_student_job(cfg, f),
            shape,
            _key(['student', index, name]),
            **info)
        job.info['match_key'] = skey
        students.append(job)
    vanilla = {
        j.info['vanilla_key']: j.key
        for j in students if j.info['vanilla_key']
    }
    for job, (name, cfg) in zip(students, configs):
        if not job.info['hallu']:
            continue
        skey = job.info['match_key']
        if skey in vanilla:
            job.info['reference'] = vanilla[skey]
            continue
        if skey not in twins:
            twin = _vanilla_twin(cfg)
            frames = job.shape[0] if len(job.shape) == 4 else 1
            twins[skey] = Job(
                f'{name} [vanilla twin]',
                'vanilla twin',
                lambda cfg=twin, f=frames: _build_student_job(cfg, f),
                job.shape,
                _key(['twin', skey]),
                config=name)
        job.info['reference'] = twins[skey].key
    # A student whose config has no teacher (vanilla, feature bank) is
    # compared with the run's teacher when there is exactly one.
    if len(teachers) == 1:
        only = next(iter(teachers))
        for job in students:
            job.info['teacher'] = job.info['teacher'] or only
    return students + list(twins.values()) + list(teachers.values())


# -------------------------------------------------------------- measuring
def _pixels(batch: int, shape: Tuple, device: torch.device,
            seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((batch, *shape), generator=g) * 255).to(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def measure_job(job: Job,
                device: Union[str, torch.device] = 'cpu',
                batch: int = 32,
                warmup: int = 3,
                repeats: int = 20,
                batch_warmup: int = 1,
                batch_repeats: int = 5,
                onnx: bool = False,
                log: Callable = print,
                int8: bool = False) -> Dict:
    """Measure one module (see the module docstring); one table row."""
    device = torch.device(device)
    torch.manual_seed(0)
    module = job.build().to(device).eval()
    one = _pixels(1, job.shape, device)
    many = _pixels(batch, job.shape, device, seed=1)
    log(f'[{device.type}] {job.name}: FLOPs, latency b1, b{batch}, memory')
    b1 = measure_latency(module, one, warmup=warmup, repeats=repeats)
    bn = measure_latency(
        module, many, warmup=batch_warmup, repeats=batch_repeats)
    row = dict(
        name=job.name,
        role=job.role,
        config=job.info.get('config'),
        input='x'.join(str(s) for s in job.shape),
        params_m=count_parameters(module) / 1e6,
        gflops=count_flops(module, one) / 1e9,
        latency_ms=b1['median_ms'],
        latency_iqr_ms=b1['iqr_ms'],
        latency_min_ms=b1['min_ms'],
        latency_max_ms=b1['max_ms'],
        batch_ms_per_sample=bn['median_ms'] / batch,
        batch_iqr_ms_per_sample=bn['iqr_ms'] / batch,
        throughput_per_s=batch * 1000 / bn['median_ms'],
        peak_mem_mb=(tensor_bytes(module, one) +
                     measure_peak_memory(module, one)) / 2**20,
        peak_mem_batch_mb=(tensor_bytes(module, many) +
                           measure_peak_memory(module, many)) / 2**20)
    if onnx or int8:
        row.update(_measure_onnx(job, module, one, many, device, warmup,
                                 repeats, batch_warmup, batch_repeats, log,
                                 int8 and job.role == 'student'))
    del module, one, many
    _free(device)
    return row


def _measure_onnx(job, module, one, many, device, warmup, repeats,
                  batch_warmup, batch_repeats, log, int8=False) -> Dict:
    """onnxruntime latency of ``module``'s export, beside PyTorch's; with
    ``int8``, of its INT8 quantisation too (:func:`_measure_int8`)."""
    log(f'[{device.type}] {job.name}: ONNX export and onnxruntime')
    with tempfile.TemporaryDirectory() as tmp:
        out = export_module(module.cpu(), one.cpu(),
                            osp.join(tmp, 'model.onnx'))
        module.to(device)
        one_np, many_np = one.cpu().numpy(), many.cpu().numpy()
        run, b1, bn = _time_session(out, device, one_np, many_np, warmup,
                                    repeats, batch_warmup, batch_repeats)
        # The same batch-1 input through PyTorch and onnxruntime, timed
        # interleaved: their ratio is robust to a busy machine.
        paired = measure_latency_ratio(
            lambda: module(one),
            lambda: run(one_np),
            warmup=warmup,
            repeats=repeats,
            device=device)
        quantized = _measure_int8(out, run, one_np, many_np, warmup,
                                  repeats, batch_warmup, batch_repeats,
                                  device, log) if int8 else {}
    batch = len(many)
    return dict(
        quantized,
        onnx_latency_ms=b1['median_ms'],
        onnx_latency_iqr_ms=b1['iqr_ms'],
        onnx_batch_ms_per_sample=bn['median_ms'] / batch,
        onnx_throughput_per_s=batch * 1000 / bn['median_ms'],
        onnx_vs_torch_paired=paired['median'],
        onnx_vs_torch_paired_iqr=paired['iqr'],
        onnx_vs_torch_best=paired['best'])


def _time_session(path, device, one, many, warmup, repeats, batch_warmup,
                  batch_repeats) -> Tuple[Callable, Dict, Dict]:
    """An onnxruntime session of the file at ``path``, as a function of the
    input array, and its latency at batch 1 (``one``) and ``len(many)``."""
    session = onnx_session(path, device.type)

    def run(x):
        return session.run(None, {'imgs': x})

    b1 = measure_latency(run, one, warmup=warmup, repeats=repeats)
    bn = measure_latency(
        run, many, warmup=batch_warmup, repeats=batch_repeats)
    return run, b1, bn


def _measure_int8(float_file, run_float, one, many, warmup, repeats,
                  batch_warmup, batch_repeats, device, log) -> Dict:
    """The INT8 model of an export (:func:`quantize_int8`, calibrated on
    the benchmark's random pixels: the speed of an INT8 graph does not
    depend on its calibration): latency at batch 1 and ``len(many)``, its
    ratio to the float model's (timed interleaved), file sizes."""
    from hallucinet_plugin.deploy.quantize import quantize_int8
    log(f'[{device.type}] INT8 quantisation and onnxruntime')
    # One prediction's frames (F, 3, H, W) per calibration sample.
    calib = [
        _pixels(1, one.shape[1:], torch.device('cpu'), seed=10 + i).numpy()
        for i in range(8)
    ]
    int8_file = osp.splitext(float_file)[0] + '.int8.onnx'
    quantize_int8(float_file, int8_file,
                  [c if c.ndim == 4 else c[0] for c in calib])
    run, b1, bn = _time_session(int8_file, device, one, many, warmup,
                                repeats, batch_warmup, batch_repeats)
    paired = measure_latency_ratio(
        lambda: run_float(one), lambda: run(one), warmup=warmup,
        repeats=repeats)
    return dict(
        int8_latency_ms=b1['median_ms'],
        int8_batch_ms_per_sample=bn['median_ms'] / len(many),
        int8_vs_float_paired=paired['median'],
        int8_vs_float_paired_iqr=paired['iqr'],
        int8_size_ratio=osp.getsize(int8_file) / osp.getsize(float_file),
        onnx_mb=osp.getsize(float_file) / 2**20,
        int8_mb=osp.getsize(int8_file) / 2**20)


def _ratio_row(row: Dict, ref: Dict, relation: str) -> Dict:
    keys = ('params_m', 'gflops', 'latency_ms', 'batch_ms_per_sample',
            'peak_mem_batch_mb')
    if 'onnx_latency_ms' in row and 'onnx_latency_ms' in ref:
        keys += ('onnx_latency_ms', )  # onnxruntime, batch 1 (--onnx)
    out = dict(
        name=row['name'],
        reference=ref['name'],
        relation=relation,
        **{k: row[k] / ref[k] if ref[k] else float('nan')
           for k in keys})
    if 'int8_latency_ms' in row and 'onnx_latency_ms' in ref and \
            relation == 'student / teacher':
        # The INT8 student against the teacher in onnxruntime (float).
        out['int8_latency_ms'] = row['int8_latency_ms'] / ref[
            'onnx_latency_ms']
    return out


def benchmark(configs: Sequence[Union[str, Tuple[str, Config]]],
              devices: Sequence[str] = ('cpu', ),
              batch: int = 32,
              warmup: int = 3,
              repeats: int = 20,
              batch_warmup: int = 1,
              batch_repeats: int = 5,
              onnx: bool = False,
              int8: bool = False,
              student_size: Optional[Sequence[int]] = None,
              teacher_shape: Optional[Sequence[int]] = None,
              cfg_options: Optional[Dict] = None,
              log: Callable = print) -> Dict:
    """Measure every student, vanilla reference and teacher of ``configs``
    on each device, in one run (``tools/benchmark.py``).

    Args:
        configs (Sequence): Config paths or ``(name, Config)`` pairs.
        devices (Sequence[str]): ``'cpu'`` and/or ``'cuda'``.
        batch (int): The larger batch (time per sample, throughput, memory).
        warmup, repeats (int): Calls before / timed at batch 1.
        batch_warmup, batch_repeats (int): The same at ``batch``.
        onnx (bool): Also time each module exported to onnxruntime.
        int8 (bool): Also each student's INT8 quantisation in onnxruntime
            (implies ``onnx``): latency, ratio to float, file size.
        student_size (Sequence[int], optional): ``(H, W)`` of the student
            frames, overriding the test pipelines.
        teacher_shape (Sequence[int], optional): ``(T, H, W)`` of a teacher
            clip, overriding the train pipelines.
        cfg_options (dict, optional): Overrides for every config.
        log (callable): Progress messages.

    Returns:
        dict: ``meta`` (what and how) and, per device, ``rows``,
        ``student_teacher`` and ``hallucinet_vanilla`` ratios.
    """
    if batch < 2:
        raise ValueError(f'the larger batch must be >= 2, got {batch}')
    named = []
    for config in configs:
        if isinstance(config, (tuple, list)):
            name, cfg = config
            named.append((name, load_config(cfg, cfg_options)))
        else:
            name = osp.splitext(osp.basename(os.fspath(config)))[0]
            named.append((name, load_config(config, cfg_options)))
    jobs = plan_jobs(named, student_size, teacher_shape)
    by_key = {job.key: job for job in jobs}
    result = dict(
        meta=_meta(batch, warmup, repeats, batch_warmup, batch_repeats,
                   onnx or int8, devices),
        devices={})
    for device in devices:
        if device == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError('--device cuda but CUDA is not available')
        rows = {
            job.key:
            measure_job(job, device, batch, warmup, repeats, batch_warmup,
                        batch_repeats, onnx or int8, log, int8)
            for job in jobs
        }
        student_teacher, hallu_vanilla = [], []
        for job in jobs:
            if job.role != 'student':
                continue
            row = rows[job.key]
            if job.info.get('teacher'):
                ratio = _ratio_row(row, rows[job.info['teacher']],
                                   'student / teacher')
                ratio.update(
                    _paired(job, by_key[job.info['teacher']], device,
                            warmup, repeats, log))
                student_teacher.append(ratio)
            if job.info.get('reference'):
                ref_job = by_key[job.info['reference']]
                ratio = _ratio_row(row, rows[ref_job.key],
                                   'HalluciNet / vanilla')
                ratio.update(
                    _paired(job, ref_job, device, warmup, repeats, log))
                hallu_vanilla.append(ratio)
        result['devices'][device] = dict(
            name=_device_name(device),
            rows=[rows[job.key] for job in jobs],
            student_teacher=student_teacher,
            hallucinet_vanilla=hallu_vanilla)
    return result


def reference_cost(preset: str,
                   root: str = CHECKOUT,
                   warmup: int = 2,
                   repeats: int = 5,
                   log: Callable = print) -> Dict:
    """Batch-1 CPU cost of a preset's first student and its teacher, with
    random weights: the reference rows of the demo's table.

    Args:
        preset (str): A key of :data:`PRESETS` whose first config has a
            teacher (``'demo-reference'``).
        root (str): As :func:`preset_configs`.
        warmup, repeats (int): Calls before / timed at batch 1, each.

    Returns:
        dict: ``student`` and ``teacher`` (``name``, ``input``,
        ``params_m``, ``gflops``, ``median_ms`` ...) and ``paired_latency``,
        the interleaved student/teacher latency ratio.
    """
    spec = preset_configs(preset, root)
    config = spec['configs'][0]
    name = osp.splitext(osp.basename(config))[0]
    jobs = plan_jobs([(name, load_config(config))], spec['student_size'],
                     spec['teacher_shape'])
    student = next(j for j in jobs if j.role == 'student')
    teacher = next(j for j in jobs if j.key == student.info['teacher'])
    out = {}
    for role, job in (('student', student), ('teacher', teacher)):
        log(f'[reference] {job.name}: cost at batch 1')
        torch.manual_seed(0)
        module = job.build().eval()
        one = _pixels(1, job.shape, torch.device('cpu'))
        with torch.no_grad():
            out[role] = summarize_cost(
                job.name, module, module, [one], warmup=warmup,
                repeats=repeats)
        out[role]['input'] = 'x'.join(str(v) for v in job.shape)
        del module
        _free(torch.device('cpu'))
    with torch.no_grad():
        out.update(_paired(student, teacher, 'cpu', warmup, repeats, log))
    return out


def _paired(job: Job, ref_job: Job, device: str, warmup: int, repeats: int,
            log: Callable) -> Dict:
    """Interleaved batch-1 latency ratio of a student and its reference, a
    vanilla student or a teacher, each on its own input (see
    :func:`measure_latency_ratio`)."""
    device = torch.device(device)
    log(f'[{device.type}] {job.name} / {ref_job.name}: paired latency')
    torch.manual_seed(0)
    module = job.build().to(device).eval()
    ref = ref_job.build().to(device).eval()
    one = _pixels(1, job.shape, device)
    ref_one = _pixels(1, ref_job.shape, device)
    ratio = measure_latency_ratio(
        lambda: ref(ref_one),
        lambda: module(one),
        warmup=warmup,
        repeats=repeats,
        device=device)
    return dict(
        paired_latency=ratio['median'],
        paired_latency_iqr=ratio['iqr'],
        paired_latency_min=ratio['min'],
        paired_latency_max=ratio['max'],
        paired_latency_best=ratio['best'])


def _device_name(device: str) -> str:
    if device == 'cuda':
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{name}, {os.cpu_count()} logical CPUs, PyTorch threads: ' \
        f'{torch.get_num_threads()}'


def _meta(batch, warmup, repeats, batch_warmup, batch_repeats, onnx,
          devices) -> Dict:
    meta = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        torch=torch.__version__,
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        batch_warmup=batch_warmup,
        batch_repeats=batch_repeats,
        devices=list(devices),
        flops=f'{FLOP_COUNTER} at batch 1, multiply-add = 2 FLOPs',
        memory=dict(
            cpu='parameters + buffers + input + peak of the running sum of '
            "PyTorch's CPU allocator events (torch.profiler, "
            'profile_memory=True) during one call',
            cuda='parameters + buffers + input + torch.cuda.'
            'max_memory_allocated during one call minus the memory '
            'allocated before it'),
        weights='random (no checkpoint, no download)')
    if onnx:
        import onnxruntime
        meta['onnxruntime'] = onnxruntime.__version__
        meta['onnxruntime_threads'] = torch.get_num_threads()
    return meta
