"""What the feature bank buys (``tools/benchmark.py --training`` over
``tools/analysis_tools/bank_benchmark.py``): real mmengine training of a
vanilla student, HalluciNet with its online teacher and from the bank, and
extraction against the bare teacher forward."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from hallucinet_plugin.feature_bank import extract_teacher_features
from hallucinet_plugin.feature_bank.store import FeatureBank
from hallucinet_plugin.utils.config import load_config
from tests.conftest import (
    REPO,
    TINY_TEACHER_DIM,
    frozen_tiny_teacher,
    make_video_dataset,
    run_tool,
    tiny_teacher,
)
from tools.analysis_tools.bank_benchmark import (
    bank_benchmark,
    format_bank_report,
    training_speed,
)

STUDENT_DIM = 96  # timm test_resnet


def pipeline(teacher: bool) -> list:
    """8-frame teacher clips at 24x24 beside the 32x32 student frames, or
    the student frames alone."""
    keys = ('imgs', 'teacher_imgs') if teacher else ('imgs', )
    return [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=8,
            num_segments=2,
            with_teacher=teacher),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews',
             teacher_scale=(24, 24) if teacher else None),
        dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs', collect_keys=keys)
    ]


def training_config(data: dict, teacher_ckpt=None) -> Config:
    """One iteration of SGD on ``data``: HalluciNet with the tiny online
    teacher when ``teacher_ckpt`` is given, else its vanilla student."""
    hallu = teacher_ckpt is not None
    model = dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        cls_head=dict(
            type='TSNHead',
            num_classes=4,
            in_channels=STUDENT_DIM + (TINY_TEACHER_DIM if hallu else 0),
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            format_shape='NCHW',
            teacher=dict(mean=[127.5] * 3, std=[64.] * 3)))
    if hallu:
        model.update(
            teacher=frozen_tiny_teacher(checkpoint=teacher_ckpt),
            hallu_head=dict(
                type='HallucinationHead',
                in_channels=STUDENT_DIM,
                out_channels=TINY_TEACHER_DIM,
                loss_hallu=dict(type='HallucinationLoss')))
    return Config(
        dict(
            default_scope='mmaction',
            model=model,
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                dataset=dict(
                    type='VideoDataset',
                    ann_file=data['ann_file'],
                    data_prefix=dict(video=data['video_dir']),
                    pipeline=pipeline(hallu))),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=1)))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Four 20-frame videos, a random tiny teacher, the online and vanilla
    configs, and the teacher's bank over the videos."""
    root = tmp_path_factory.mktemp('bank_benchmark')
    data = make_video_dataset(str(root / 'data'), num_videos=4,
                              num_frames=20)
    init_default_scope('mmaction')
    torch.manual_seed(0)
    ckpt = str(root / 'teacher.pth')
    torch.save(dict(state_dict=MODELS.build(tiny_teacher()).state_dict()),
               ckpt)
    online = training_config(data, ckpt)
    store = extract_teacher_features(
        online, str(root / 'bank.lmdb'), workers=0, progress=False)['store']
    return dict(online=online, vanilla=training_config(data), store=store)


def test_bank_benchmark(setup):
    """Three runs timed by mmengine, extraction against the bare forward,
    interleaved in rounds; the report shows each ratio's spread."""
    messages = []
    result = bank_benchmark(
        copy.deepcopy(setup['vanilla']),
        copy.deepcopy(setup['online']),
        setup['store'],
        iters=3,
        warmup=1,
        rounds=2,
        log=messages.append)
    assert set(result['training']) == {
        'vanilla', 'online teacher', 'feature bank'
    }
    for row in result['training'].values():
        assert row['iters'] == 6 and len(row['rounds']) == 2
        assert row['iters_per_s'] == pytest.approx(1 / row['s_per_iter'])
        assert 0 <= row['data_s_per_iter'] < row['s_per_iter']
    rate = {k: v['iters_per_s'] for k, v in result['training'].items()}
    assert result['ratios']['feature bank / vanilla'] == pytest.approx(
        rate['feature bank'] / rate['vanilla'])
    ext = result['extraction']
    stored = FeatureBank(setup['store'])
    assert ext['clips'] == sum(len(stored.get(k)[1]) for k in stored.keys())
    assert ext['videos'] == len(stored) == 4
    assert ext['ratio'] == pytest.approx(ext['extract_clips_per_s'] /
                                         ext['forward_clips_per_s'])
    # Each ratio within each round (the spread shown), extraction twice.
    rounds = result['ratio_rounds']['feature bank / vanilla']
    assert rounds == pytest.approx([
        b / v for b, v in zip(result['training']['feature bank']['rounds'],
                              result['training']['vanilla']['rounds'])
    ])
    assert len(ext['rounds']) == 2
    assert ext['teacher_build_s'] > 0
    assert ext['ratio_without_build'] > ext['ratio']
    assert min(ext['rounds']) <= ext['ratio'] * 1.0001
    report = format_bank_report(result)
    low, high = min(rounds), max(rounds)
    assert f'| feature bank / vanilla | ' \
        f"{result['ratios']['feature bank / vanilla']:.2f} | " \
        f'{low:.2f}-{high:.2f} |' in report
    # Two interleaved rounds, the second in reverse order, then extraction.
    assert [m.split(': ')[1].split(' (')[0] for m in messages[:6]] == [
        'vanilla', 'online teacher', 'feature bank', 'feature bank',
        'online teacher', 'vanilla'
    ]
    assert len(messages) == 8


def test_training_speed_never_waits_for_an_epoch_end(setup):
    """mmengine's iteration loop sleeps 2 s whenever the data-loader
    iterator runs out; the measurement uses an endless sampler, so a batch
    holding the whole training set (an epoch per iteration) is not charged
    those sleeps as data wait."""
    cfg = copy.deepcopy(setup['online'])
    cfg.train_dataloader.batch_size = 4  # every video
    result = training_speed(cfg, iters=2, warmup=1)
    assert result['data_s_per_iter'] < 1.0, result


@pytest.mark.slow
def test_training_benchmark_on_generated_videos(tmp_path):
    """``--training --generated``: configs whose data and teacher checkpoint
    are not here (the demo's, outside a demo run) are measured on generated
    videos with a random-weight teacher checkpoint and a freshly extracted
    bank; both ratios come with their round-to-round spread."""
    demo = osp.join(REPO, 'configs', 'demo')
    vanilla = osp.join(demo, 'vanilla_resnet10t_adam-10e_demo.py')
    online = osp.join(demo, 'hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py')
    assert not osp.exists(load_config(online).model.teacher.checkpoint)
    out = tmp_path / 'training'
    options = ['train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False',
               'train_dataloader.batch_size=2']
    proc = run_tool('tools/benchmark.py', '--training', vanilla, online,
                    '--generated', '3', '--generated-size', '64',
                    '--generated-frames', '20', '--iters', '2', '--rounds',
                    '2', '--out', str(out), '--cfg-options', *options)
    result = json.loads((out / 'training.json').read_text())
    made = result['generated']
    assert made['random'] and made['videos'] == 3
    assert osp.isfile(made['teacher_ckpt'])
    assert len(list((out / 'generated' / 'data' / 'videos').rglob('*.mp4'))) \
        == 3 + 1 + 1  # train, plus one teacher_train and one val video
    for name, rounds in result['ratio_rounds'].items():
        assert len(rounds) == 2, name
    ext = result['extraction']
    # 20 frames, 16-frame windows every 4: windows at 0 and 4, per video.
    assert ext['clips'] == 3 * 2 and ext['videos'] == 3
    assert len(ext['rounds']) == 2
    low = min(result['ratio_rounds']['feature bank / vanilla'])
    assert f'| feature bank / vanilla | ' \
        f"{result['ratios']['feature bank / vanilla']:.2f} | {low:.2f}-" \
        in proc.stdout
    # --generated only measures training.
    assert '--generated goes with --training' in run_tool(
        'tools/benchmark.py', '--generated', '3', online, check=False).stderr
