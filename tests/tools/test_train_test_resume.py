"""tools/train.py writes checkpoints that tools/test.py evaluates and
tools/train.py --resume continues, as real subprocesses with the pinned
torch (weights_only loading) and mmengine."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch
from conftest import run_tool

CONFIG = 'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py'


def data_options(dataset: dict, epochs: int) -> list:
    opts = ['model.teacher.checkpoint=None', f'train_cfg.max_epochs={epochs}',
            'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
            'param_scheduler.0.T_max=3']
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file={dataset["ann_file"]}',
            f'{split}_dataloader.dataset.data_prefix.video='
            f'{dataset["video_dir"]}', f'{split}_dataloader.batch_size=4',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False'
        ]
    return opts


@pytest.mark.slow
def test_train_test_resume(video_dataset, tmp_path):
    work_dir = str(tmp_path / 'work')
    run_tool('tools/train.py', CONFIG, '--work-dir', work_dir, '--seed', '1',
             '--cfg-options', *data_options(video_dataset, 2))
    ckpt = osp.join(work_dir, 'epoch_2.pth')
    assert osp.isfile(ckpt)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == ckpt
    # Written with the plugin: loadable with torch's default weights_only.
    import hallucinet_plugin  # noqa: F401
    state = torch.load(ckpt, map_location='cpu')
    assert not any(k.startswith('teacher.') for k in state['state_dict'])
    assert 'message_hub' in state and 'optimizer' in state

    dump = str(tmp_path / 'preds.pkl')
    proc = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', work_dir,
                    '--dump', dump, '--cfg-options',
                    *data_options(video_dataset, 2))
    assert 'acc/top1' in proc.stdout + proc.stderr
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == video_dataset['num_videos']

    proc = run_tool('tools/train.py', CONFIG, '--work-dir', work_dir,
                    '--resume', '--cfg-options',
                    *data_options(video_dataset, 3))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2' in log
    assert 'Epoch(train) [1]' not in log and 'Epoch(train) [3]' in log
    resumed = torch.load(osp.join(work_dir, 'epoch_3.pth'), map_location='cpu')
    assert resumed['meta']['epoch'] == 3
    scalars_file = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[0]
    with open(scalars_file) as f:
        scalars = [json.loads(line) for line in f]
    assert any('loss_hallu' in s for s in scalars)
