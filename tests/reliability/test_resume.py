"""A training run killed with SIGKILL in the middle of epoch 2 and
restarted with ``tools/train.py --resume`` ends with the weights of an
uninterrupted run, bit for bit (CPU, fixed seed, ``--deterministic``).

The demo HalluciNet config keeps everything random that is random in
real training: dropout in the classifier and random clip positions.
mmengine restores weights, optimizer and schedulers but not the random
generators; ``ResumableRandomnessHook`` makes every draw a function of the
epoch and iteration, which is what makes the resumed run exact. The same
holds with unlabelled videos in every batch (``--unlabelled``):
``MixedSourceSampler``'s orders depend only on the seed and the epoch.
"""
import os
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from reliability_utils import (
    DEMO,
    REPO,
    load_state,
    run,
    run_until,
    tool_cmd,
    write_config,
)

import hallucinet_plugin  # noqa: F401  (registers the plugin's modules)
from tests.conftest import make_video_dataset
from tests.utils.forged_pickles import array_of, object_field_dtype

pytestmark = pytest.mark.slow

EPOCHS = 3
# 8 videos in batches of 2: 4 iterations per epoch; killed after the 2nd
# iteration of epoch 2.
KILL_AT = 6
HOOKS = [dict(type='ResumableRandomnessHook')]
ARGS = ('--seed', '0', '--deterministic')


@pytest.fixture(scope='module', params=['labelled', 'unlabelled'])
def runs(request, tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    data = make_video_dataset(str(root / 'data'), num_videos=8)
    args = ARGS
    if request.param == 'unlabelled':
        # Every batch adds as many unlabelled videos (MixedSourceSampler):
        # their order, too, must continue exactly after the resume.
        unlabelled = str(root / 'unlabelled.txt')
        with open(unlabelled, 'w') as f:
            f.write(''.join(f'video_{i:03d}.mp4\n' for i in range(7, -1, -1)))
        args = ARGS + ('--unlabelled', unlabelled)
    # The teacher comes from its checkpoint, as in real training: resumed
    # checkpoints do not hold it.
    init_default_scope('mmaction')
    torch.manual_seed(1)
    teacher = MODELS.build(Config.fromfile(osp.join(REPO, DEMO)).teacher_model)
    teacher_ckpt = str(root / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)
    options = {'model.teacher.checkpoint': teacher_ckpt}
    config = write_config(
        str(root / 'cfg.py'),
        DEMO,
        data,
        2,
        EPOCHS,
        hooks=HOOKS,
        options=options)
    # The same config plus a hook that stops after iteration KILL_AT (it
    # draws nothing), where the process is killed.
    marker = str(root / 'reached')
    killed = write_config(
        str(root / 'killed.py'),
        DEMO,
        data,
        2,
        EPOCHS,
        hooks=HOOKS +
        [dict(type='PauseAtIterHook', at_iter=KILL_AT, marker=marker)],
        options=options)
    full, part = str(root / 'full'), str(root / 'part')
    run(tool_cmd('train.py', config, '--work-dir', full, *args))
    killed_log = run_until(
        tool_cmd('train.py', killed, '--work-dir', part, *args), marker)
    left = sorted(f for f in os.listdir(part) if f.endswith('.pth'))
    resumed = run(
        tool_cmd('train.py', config, '--work-dir', part, '--resume', *args))
    return dict(
        config=config,
        full=full,
        part=part,
        killed_log=killed_log,
        left=left,
        resumed_log=resumed.stdout + resumed.stderr)


def test_killed_mid_epoch(runs):
    # Killed in epoch 2: only epoch 1's checkpoint was written.
    assert runs['left'] == ['epoch_1.pth']
    assert f'Epoch(train) [2][{KILL_AT - 4}/4]' in runs['killed_log']
    assert 'Epoch(train) [2][3/4]' not in runs['killed_log']


def test_resume_starts_at_the_checkpoint(runs):
    log = runs['resumed_log']
    assert 'resumed epoch: 1, iter: 4' in log
    assert 'Epoch(train) [1]' not in log
    assert 'Epoch(train) [2][1/4]' in log and 'Epoch(train) [3][4/4]' in log


def test_resumed_weights_are_bit_exact(runs):
    a = torch.load(
        osp.join(runs['full'], f'epoch_{EPOCHS}.pth'), map_location='cpu')
    b = torch.load(
        osp.join(runs['part'], f'epoch_{EPOCHS}.pth'), map_location='cpu')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    # Adam's moments too: training would go on identically.
    for index, state in a['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(value, b['optimizer']['state'][index][name])
    # Checkpoints leave the frozen teacher out, and resuming still works:
    # it is rebuilt and reloaded from its checkpoint with the model.
    assert not any(k.startswith('teacher.') for k in b['state_dict'])
    assert any(k.startswith('hallu_head.') for k in b['state_dict'])


def test_training_moved_the_weights(runs):
    """The comparison above is not between two untouched models."""
    first = load_state(osp.join(runs['full'], 'epoch_1.pth'))
    last = load_state(osp.join(runs['full'], f'epoch_{EPOCHS}.pth'))
    assert not torch.equal(first['cls_head.fc_cls.weight'],
                           last['cls_head.fc_cls.weight'])


def test_forged_message_hub_is_refused_on_resume(runs, tmp_path):
    """``--resume`` from a checkpoint whose message hub holds a numpy array
    with a forged dtype (an object field under flags claiming none): the
    run stops with the file named, before numpy sees the dtype (a resume
    reads no numpy name; tools/sanitize_checkpoint.py refuses the forged
    state, see tests/utils/test_pickle_data.py). On the allowlist this
    replaced it loaded and the process died by SIGSEGV (rc 139)."""
    checkpoint = torch.load(osp.join(runs['full'], f'epoch_{EPOCHS}.pth'))
    checkpoint['message_hub']['runtime_info']['forged'] = array_of(
        object_field_dtype())
    forged = str(tmp_path / 'forged.pth')
    torch.save(checkpoint, forged)
    proc = run(
        tool_cmd('train.py', runs['config'], '--work-dir',
                 str(tmp_path / 'work'), '--resume', forged, *ARGS),
        check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert f'checkpoint {forged}: torch.load(weights_only=True) failed: ' \
        in proc.stderr
    assert 'multiarray._reconstruct' in proc.stderr
    assert f'tools/sanitize_checkpoint.py {forged} OUT' in proc.stderr
