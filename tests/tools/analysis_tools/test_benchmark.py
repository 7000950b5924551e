"""The cost benchmark (``tools/benchmark.py`` over
``tools/analysis_tools/benchmark.py``): the tool on a tiny config, the
plans of the presets."""
import json
import math
import os.path as osp

import pytest
from mmengine.config import Config

from hallucinet_plugin.utils.config import load_config
from tests.conftest import REPO, frozen_tiny_teacher, run_tool
from tools.analysis_tools.benchmark import _describe_teacher, plan_jobs
from tools.analysis_tools.presets import PRESETS, preset_configs

STUDENT_DIM, TEACHER_DIM, NUM_CLASSES = 96, 16, 3


def tiny_config() -> Config:
    """timm test_resnet student at 32x32, a ResNet3d-18 teacher at 1/8
    width on 8x32x32 clips."""
    model = dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        teacher=frozen_tiny_teacher(
            NUM_CLASSES, checkpoint='does/not/exist.pth'),
        hallu_head=dict(
            type='HallucinationHead',
            in_channels=STUDENT_DIM,
            out_channels=TEACHER_DIM),
        cls_head=dict(
            type='TSNHead',
            num_classes=NUM_CLASSES,
            in_channels=STUDENT_DIM + TEACHER_DIM,
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            teacher=dict(mean=[127.5] * 3, std=[64.] * 3)))
    test_pipeline = [
        dict(type='DecordInit'),
        dict(type='HalluSampleFrames', with_teacher=False, test_mode=True),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')
    ]
    train_pipeline = [
        dict(type='DecordInit'),
        dict(type='HalluSampleFrames', clip_len=8),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews', teacher_scale=(32, 32)),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs', collect_keys=('imgs', 'teacher_imgs'))
    ]
    return Config(
        dict(
            model=model,
            test_pipeline=test_pipeline,
            train_pipeline=train_pipeline))


def markdown_table(text: str, first_header: str):
    """Header and rows of the Markdown table whose header starts so."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(f'| {first_header}'))
    rows = []
    for line in lines[start:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    return rows[0], rows[2:]


def test_benchmark_tool(tmp_path):
    cfg = tiny_config()
    cfg.dump(str(tmp_path / 'tiny_hallucinet.py'))
    out = tmp_path / 'report'
    proc = run_tool('tools/benchmark.py', str(tmp_path / 'tiny_hallucinet.py'),
                    '--device', 'cpu', '--batch', '2', '--warmup', '1',
                    '--repeats', '3', '--batch-warmup', '0',
                    '--batch-repeats', '2', '--onnx', '--threads', '1',
                    '--out', str(out))
    markdown = open(out / 'benchmark.md').read()
    assert markdown in proc.stdout
    header, rows = markdown_table(markdown, 'model | role')
    assert len(header) == 19
    assert 'ORT b1 (ms)' in header and 'peak mem b2 (MB)' in header
    assert [r[:3] for r in rows] == [
        ['tiny_hallucinet', 'student', '3x32x32'],
        ['tiny_hallucinet [vanilla twin]', 'vanilla twin', '3x32x32'],
        ['teacher ResNet3d-18', 'teacher', '1x3x8x32x32'],
    ]
    for row in rows:
        assert len(row) == len(header)
        for cell in row:
            assert cell and cell.lower() not in ('n/a', 'nan', 'inf')
    ratio_tables = markdown.split('### ')[1:]
    assert [t.splitlines()[0] for t in ratio_tables] == [
        'Student / teacher', 'HalluciNet / vanilla student'
    ]
    expected = [['tiny_hallucinet', 'teacher ResNet3d-18'],
                ['tiny_hallucinet', 'tiny_hallucinet [vanilla twin]']]
    for text, names in zip(ratio_tables, expected):
        header, ratio_rows = markdown_table(text, 'model | reference')
        # With --onnx, the onnxruntime batch-1 latency ratio too.
        assert header[-4:] == ['paired latency b1', 'paired IQR',
                               'paired best', 'ORT latency b1']
        assert len(ratio_rows) == 1 and ratio_rows[0][:2] == names
        assert all(cell and cell != 'n/a' for cell in ratio_rows[0])

    result = json.load(open(out / 'benchmark.json'))
    cpu = result['devices']['cpu']
    student, twin, teacher = cpu['rows']
    for row in cpu['rows']:
        for key, value in row.items():
            if isinstance(value, float):
                assert math.isfinite(value) and value > 0, (row['name'], key)
        assert row['peak_mem_batch_mb'] > row['peak_mem_mb']
        assert row['throughput_per_s'] == pytest.approx(
            1000 / row['batch_ms_per_sample'])
    # HalluciNet = its twin + the hallucination head (96 -> 16) + the
    # classifier's 16 extra inputs (3 classes), in parameters and FLOPs.
    extra_params = STUDENT_DIM * TEACHER_DIM + TEACHER_DIM + \
        TEACHER_DIM * NUM_CLASSES
    assert round((student['params_m'] - twin['params_m']) * 1e6) == \
        extra_params
    extra_flops = 2 * STUDENT_DIM * TEACHER_DIM + \
        2 * TEACHER_DIM * NUM_CLASSES
    assert round((student['gflops'] - twin['gflops']) * 1e9) == extra_flops
    assert cpu['student_teacher'][0]['reference'] == teacher['name']
    assert cpu['student_teacher'][0]['paired_latency'] > 0
    assert cpu['student_teacher'][0]['params_m'] == pytest.approx(
        student['params_m'] / teacher['params_m'])
    ratio = cpu['hallucinet_vanilla'][0]
    assert ratio['reference'] == twin['name']
    assert ratio['paired_latency'] > 0
    assert result['meta']['flops'].startswith(
        'torch.utils.flop_counter.FlopCounterMode')


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_presets_name_configs_of_this_checkout(name):
    """By default a preset's paths are under the checkout the tools are
    in, and every config it names exists there."""
    preset = preset_configs(name)
    assert preset == preset_configs(name, REPO)
    for path in preset['configs']:
        assert path.startswith(osp.join(REPO, 'configs', ''))
        assert osp.isfile(path), path


def test_preset_refusals(tmp_path):
    with pytest.raises(KeyError, match="unknown preset 'nope'"):
        preset_configs('nope')
    with pytest.raises(FileNotFoundError, match="preset 'paper' needs"):
        preset_configs('paper', str(tmp_path))


def _named(preset):
    paths = preset_configs(preset)['configs']
    return [(osp.splitext(osp.basename(p))[0], load_config(p))
            for p in paths]


def test_demo_preset_plan():
    """Fused and direct use the vanilla config of the run; 2f (two frames)
    gets its vanilla twin; the four share one teacher."""
    preset = preset_configs('demo')
    jobs = plan_jobs(_named('demo'), preset['student_size'],
                     preset['teacher_shape'])
    by_name = {job.name: job for job in jobs}
    by_key = {job.key: job for job in jobs}
    teachers = [job for job in jobs if job.role == 'teacher']
    # One 16-frame clip per student frame.
    assert len(teachers) == 1 and teachers[0].shape[:3] == (1, 3, 16)
    vanilla = by_name['vanilla_resnet10t_adam-10e_demo']
    assert len(vanilla.shape) == 3 and vanilla.shape[0] == 3
    fused = by_name['hallucinet_resnet10t_r3d-tiny_adam-10e_demo']
    direct = by_name['hallucinet-direct_resnet10t_r3d-tiny_adam-10e_demo']
    two = by_name['hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo']
    assert fused.shape == direct.shape == vanilla.shape
    assert by_key[fused.info['reference']] is vanilla
    assert by_key[direct.info['reference']] is vanilla
    assert two.shape == (2, *vanilla.shape)
    twin = by_key[two.info['reference']]
    assert twin.role == 'vanilla twin' and twin.shape == two.shape
    for job in (vanilla, fused, direct, two):
        assert job.info['teacher'] == teachers[0].key


def test_paper_preset_plan():
    jobs = plan_jobs(_named('paper'))
    roles = [(job.role, job.shape) for job in jobs]
    assert roles == [('student', (3, 227, 227)), ('student', (3, 227, 227)),
                     ('teacher', (1, 3, 16, 112, 112))]
    vanilla, hallucinet, teacher = jobs
    assert teacher.name == 'teacher ResNeXt3D-101'
    assert hallucinet.info['reference'] == vanilla.key


def test_teacher_named_by_depth_and_blocks():
    assert _describe_teacher(dict(type='ResNet3d', depth=18)) == 'ResNet3d-18'
    assert _describe_teacher(
        dict(type='Recognizer3D',
             backbone=dict(type='ResNet3d', depth=18,
                           stage_blocks=(1, 1, 1, 1)))) == \
        'ResNet3d-18 (blocks 1-1-1-1)'


@pytest.mark.parametrize('preset, size', [('efficient', (227, 227)),
                                          ('efficient-mobile', (160, 160))])
def test_efficient_presets_plan(preset, size):
    """Five timm students, each with its vanilla twin, one shared paper
    teacher at 16x112x112."""
    info = preset_configs(preset)
    jobs = plan_jobs(_named(preset), info['student_size'],
                     info['teacher_shape'])
    roles = [job.role for job in jobs]
    assert roles.count('student') == 5 and roles.count('vanilla twin') == 5
    teachers = [job for job in jobs if job.role == 'teacher']
    assert len(teachers) == 1 and teachers[0].name == 'teacher ResNeXt3D-101'
    assert teachers[0].shape == (1, 3, 16, 112, 112)
    for job in jobs:
        if job.role != 'teacher':
            assert job.shape == (3, *size), job.name


@pytest.mark.parametrize(
    'path', preset_configs('efficient')['configs'] +
    preset_configs('demo-reference')['configs'])
def test_efficient_student_widths(path):
    """Each config's student_dim is its timm model's pre-logit width (the
    build checks hallu_head.in_channels against the built student)."""
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    cfg = load_config(path)
    model = dict(cfg.model, teacher=None)
    model['backbone'] = dict(model['backbone'], pretrained=False)
    built = MODELS.build(model)
    assert built.hallu_head.in_channels == cfg.student_dim
