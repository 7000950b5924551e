"""tools/train.py --unlabelled and tools/extract_teacher_features.py
--unlabelled as real subprocesses: labelled and unlabelled videos in every
batch, from the feature bank and with the online teacher, and the labels of
a list used as unlabelled never reach training."""
import glob
import json
import os.path as osp
import re

import pytest
import torch
from conftest import make_video_dataset, run_tool
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401  (weights_only allowlist)

pytestmark = pytest.mark.slow

CONFIG = 'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py'
TRAIN = ('--seed', '0', '--deterministic')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('unlabelled')
    labelled = make_video_dataset(str(root / 'labelled'), num_videos=4)
    # Unlabelled videos in a folder of their own under the labelled ones'
    # data_prefix; their list names them relative to it, with labels
    # (read with --unlabelled-ignore-labels) or without.
    other = make_video_dataset(
        osp.join(labelled['video_dir'], 'extra'), num_videos=4, seed=1)
    with open(other['ann_file']) as f:
        lines = [line.split() for line in f.read().splitlines()]
    paths = [f'extra/videos/{name}' for name, _ in lines]
    lists = {}
    for name, rows in (('plain', paths),
                       ('labelled', [f'{p} {label}' for p, (_, label) in
                                     zip(paths, lines)]),
                       ('garbage', [f'{p} no-such-label 7' for p in paths])):
        lists[name] = str(root / f'{name}.txt')
        with open(lists[name], 'w') as f:
            f.write('\n'.join(rows) + '\n')
    # A random teacher, saved: the bank and the online runs share it.
    init_default_scope('mmaction')
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(CONFIG).teacher_model)
    ckpt = str(root / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    return dict(root=root, labelled=labelled, lists=lists, teacher=ckpt)


def options(data, epochs=1):
    labelled = data['labelled']
    opts = [
        f'model.teacher.checkpoint={data["teacher"]}',
        f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=9',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2'
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file={labelled["ann_file"]}',
            f'{split}_dataloader.dataset.data_prefix.video='
            f'{labelled["video_dir"]}', f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return opts


def train(data, work_dir, *args, epochs=1):
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work_dir),
                    *TRAIN, *args, '--cfg-options',
                    *options(data, epochs))
    return proc.stdout + proc.stderr


def scalars(work_dir):
    path = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[0]
    with open(path) as f:
        return [json.loads(line) for line in f]


def weights(work_dir, epoch=1):
    return torch.load(
        osp.join(work_dir, f'epoch_{epoch}.pth'),
        map_location='cpu')['state_dict']


def test_bank_with_unlabelled_videos_end_to_end(data):
    bank = str(data['root'] / 'bank.lmdb')
    unlabelled = ('--unlabelled', data['lists']['plain'])
    # A bank of the labelled videos only: training refuses the unlabelled
    # ones, naming the video and the switch that extracts it.
    run_tool('tools/extract_teacher_features.py', CONFIG, '--out', bank,
             '--workers', '0', '--device', 'cpu', '--no-progress',
             '--cfg-options', *options(data))
    proc = run_tool('tools/train.py', CONFIG, '--work-dir',
                    str(data['root'] / 'refused'), '--teacher-bank', bank,
                    *unlabelled, '--cfg-options', *options(data),
                    check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert re.search(r"video 'extra/videos/video_00\d\.mp4' is not in the "
                     r'teacher feature bank .*--unlabelled LIST',
                     proc.stderr), proc.stderr[-3000:]
    # The same command with --unlabelled adds the unlabelled videos.
    proc = run_tool('tools/extract_teacher_features.py', CONFIG, '--out',
                    bank, '--workers', '0', '--device', 'cpu',
                    '--no-progress', *unlabelled, '--cfg-options',
                    *options(data))
    assert '8 videos' in proc.stdout and 'extracted 4' in proc.stdout
    work_dir = data['root'] / 'bank_run'
    log = train(data, work_dir, '--teacher-bank', bank, *unlabelled,
                '--unlabelled-ratio', '1', epochs=2)
    # 4 labelled videos, 2 per batch, and as many unlabelled ones.
    assert 'MixedSourceSampler: batches of 2 of source 0 (4 samples) + 2 ' \
        'of source 1 (4 samples)' in log
    assert 'Epoch(train) [2][2/2]' in log
    rows = [r for r in scalars(work_dir) if 'loss_hallu' in r]
    assert len(rows) == 4
    assert all(r['hallu_unlabelled'] > 0 and r['loss_cls'] > 0
               for r in rows)
    # The training run's own config: the bank in both datasets.
    saved = glob.glob(str(work_dir / '*' / 'vis_data' / 'config.py'))[0]
    cfg = Config.fromfile(saved)
    datasets = cfg.train_dataloader.dataset.datasets
    assert [d.get('unlabelled', False) for d in datasets] == [False, True]
    for dataset in datasets:
        load = [t for t in dataset.pipeline
                if t.type == 'LoadTeacherFeatures']
        assert len(load) == 1 and load[0].store == bank
    # Unlabelled videos named like labelled ones, under another prefix:
    # the same keys in one store, refused as extraction refuses them
    # (they would read the labelled videos' targets).
    same_names = str(data['root'] / 'same_names.txt')
    with open(same_names, 'w') as f:
        f.write('video_000.mp4\nvideo_001.mp4\n')
    proc = run_tool(
        'tools/train.py', CONFIG, '--work-dir',
        str(data['root'] / 'collision'), '--teacher-bank', bank,
        '--unlabelled', same_names, '--unlabelled-prefix',
        osp.join(data['labelled']['video_dir'], 'extra', 'videos'),
        '--cfg-options', *options(data), check=False)
    assert proc.returncode != 0
    assert "two videos share the bank key 'video_000.mp4'" in proc.stderr, \
        proc.stderr[-3000:]


def test_labels_of_the_unlabelled_list_are_never_read(data):
    """Online teacher: the same run with the unlabelled list's labels, with
    garbage instead of labels, and without labels ends with the same
    weights, bit for bit; a change of the labelled list's labels does
    not (so the comparison can fail)."""
    root = data['root']
    runs = {}
    for name in ('labelled', 'garbage'):
        runs[name] = root / f'online_{name}'
        train(data, runs[name], '--unlabelled', data['lists'][name],
              '--unlabelled-ignore-labels')
    runs['plain'] = root / 'online_plain'
    log = train(data, runs['plain'], '--unlabelled', data['lists']['plain'])
    assert 'hallu_unlabelled' in log
    reference = weights(runs['plain'])
    for name in ('labelled', 'garbage'):
        state = weights(runs[name])
        assert state.keys() == reference.keys()
        for key, value in reference.items():
            assert torch.equal(value, state[key]), (name, key)
    # Control: other labels for the labelled videos change the weights.
    shifted = str(root / 'shifted.txt')
    with open(data['labelled']['ann_file']) as f:
        rows = [line.split() for line in f.read().splitlines()]
    with open(shifted, 'w') as f:
        f.write(''.join(f'{p} {(int(l) + 1) % 4}\n' for p, l in rows))
    control = root / 'online_control'
    run_tool('tools/train.py', CONFIG, '--work-dir', str(control), *TRAIN,
             '--unlabelled', data['lists']['plain'], '--cfg-options',
             *options(data), f'train_dataloader.dataset.ann_file={shifted}')
    changed = weights(control)
    assert not torch.equal(changed['cls_head.fc_cls.weight'],
                           reference['cls_head.fc_cls.weight'])
