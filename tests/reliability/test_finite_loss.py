"""A non-finite loss stops tools/train.py at that iteration, naming the
loss terms and the batch's videos, in one process and on every rank of a
torchrun. The NaN is one video's teacher targets, set by
``PoisonTargetsHook`` (a corrupt feature-bank entry no longer gets that
far: the store refuses it, see tests/feature_bank/test_store.py and
test_writer.py)."""
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from reliability_utils import (
    DEMO,
    extract_bank,
    run,
    tool_cmd,
    write_config,
)

import hallucinet_plugin  # noqa: F401
from tests.conftest import make_video_dataset

pytestmark = pytest.mark.slow

POISONED = 'video_005.mp4'


@pytest.fixture(scope='module')
def poisoned(tmp_path_factory):
    """A bank config, and the video whose targets are poisoned."""
    root = tmp_path_factory.mktemp('nan')
    data = make_video_dataset(str(root / 'data'), num_videos=8)
    online = write_config(str(root / 'online.py'), DEMO, data, 2, 1)
    init_default_scope('mmaction')
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(online).model.teacher.model)
    ckpt = str(root / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    online = write_config(
        str(root / 'online.py'),
        DEMO,
        data,
        2,
        1,
        options={'model.teacher.checkpoint': ckpt})
    bank = str(root / 'bank.lmdb')
    extract_bank(online, bank)
    return dict(root=root, data=data, bank=bank, ckpt=ckpt)


def train(poisoned, name, nproc, batch_size):
    root, data = poisoned['root'], poisoned['data']
    # The online config, trained from the bank (tools/train.py
    # --teacher-bank checks the store against it).
    config = write_config(
        str(root / f'{name}.py'),
        DEMO,
        data,
        batch_size=batch_size,
        epochs=1,
        hooks=[
            dict(type='PoisonTargetsHook', filename=POISONED),
            dict(type='FiniteLossHook')
        ],
        options={
            'train_dataloader.sampler.shuffle': False,
            'model.teacher.checkpoint': poisoned['ckpt'],
        })
    work_dir = str(root / f'work_{name}')
    proc = run(
        tool_cmd(
            'train.py', config, '--work-dir', work_dir, '--seed', '0',
            '--teacher-bank', poisoned['bank'], nproc=nproc),
        check=False)
    return proc, proc.stdout + proc.stderr, work_dir


def test_stops_at_the_iteration_naming_terms_and_files(poisoned):
    # Batches of 2 in order: the poisoned video is in the 3rd.
    proc, log, work_dir = train(poisoned, 'one', 1, 2)
    assert proc.returncode != 0
    video_dir = poisoned['data']['video_dir']
    assert ('FloatingPointError: non-finite loss at iteration 3 (epoch 1, '
            'batch 3 of 4):\n  loss=nan, loss_hallu=nan; batch files: '
            f'{osp.join(video_dir, "video_004.mp4")}, '
            f'{osp.join(video_dir, POISONED)}') in log
    # The finite term is not blamed; the iterations before trained.
    assert 'loss_cls=' not in log.split('FloatingPointError')[-1]
    assert 'Epoch(train) [1][2/4]' in log
    assert 'Epoch(train) [1][3/4]' not in log
    assert not osp.exists(osp.join(work_dir, 'epoch_1.pth'))


def test_every_rank_stops_together(poisoned):
    # Rank r takes videos r, r + 2, ...: the poisoned one is rank 1's
    # second batch; rank 0's losses are finite, and it stops too.
    proc, log, _ = train(poisoned, 'two', 2, 2)
    assert proc.returncode != 0
    video_dir = poisoned['data']['video_dir']
    message = ('non-finite loss at iteration 2 (epoch 1, batch 2 of 2):\n'
               '  rank 1: loss=nan, loss_hallu=nan; batch files: '
               f'{osp.join(video_dir, POISONED)}, '
               f'{osp.join(video_dir, "video_007.mp4")}')
    for rank in (0, 1):
        assert f'[rank{rank}]: FloatingPointError: ' + message.replace(
            '\n', f'\n[rank{rank}]: ') in log, rank
    assert 'rank 0:' not in log
