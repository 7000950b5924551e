"""torchrun of tools/train.py and tools/test.py (``--launcher pytorch``,
gloo on CPU), two processes against one, on the demo HalluciNet config
with an online teacher and with its feature-bank variant.

How the runs are made comparable: two processes with batch b against one
with batch 2b, same seed. mmengine's DefaultSampler gives rank r the
indices ``perm[r::2]`` of the same seeded permutation, so each step's two
half-batches together hold exactly the one-process batch; DDP averages the
two ranks' gradients, which for per-sample losses of equal-size halves is
the gradient of the whole batch. Three things would still differ, and are
switched off for the comparison: BatchNorm's batch statistics (each rank
normalises over its own half; SyncBN, the usual cure, is CUDA-only in
PyTorch), so the student's BatchNorm becomes timm's per-sample
``groupnorm1``; dropout masks and clip positions, drawn from per-process
generators, so dropout is 0 and clips are placed as at test time. The
frozen teacher keeps its BatchNorm: in eval mode it is per-sample.
"""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from reliability_utils import (
    DEMO,
    extract_bank,
    load_state,
    read_records,
    run,
    tool_cmd,
    write_config,
)

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.hallu_video_dataset  # noqa: F401
from hallucinet_plugin.feature_bank.store import FeatureBank
from hallucinet_plugin.utils import get_pred_score
from tests.conftest import make_video_dataset

pytestmark = pytest.mark.slow

COMPARABLE = {
    'model.backbone.norm_layer': 'groupnorm1',
    'model.cls_head.dropout_ratio': 0.0,
    'train_dataloader.dataset.pipeline.1.test_mode': True,
}
EPOCHS = 2
NUM_VIDEOS = 8


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist')
    data = make_video_dataset(str(root / 'data'), num_videos=NUM_VIDEOS)
    # A random teacher, saved so that the online runs and the bank see the
    # same one, and the student's initial weights, loaded by every run:
    # building the teacher draws from the generator before the student's
    # heads are initialised, which the bank variant (no teacher) does not.
    init_default_scope('mmaction')
    config = write_config(
        str(root / 'base.py'), DEMO, data, 2, EPOCHS, options=COMPARABLE)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    teacher_ckpt, init_ckpt = str(root / 'teacher.pth'), str(root / 'init.pth')
    torch.save(dict(state_dict=model.teacher.model.state_dict()), teacher_ckpt)
    torch.save(dict(state_dict=model.state_dict()), init_ckpt)
    options = dict(COMPARABLE, load_from=init_ckpt)

    out = dict(root=root, data=data, teacher=model.teacher)
    for name, nproc, batch in (('one', 1, 2 * 2), ('two', 2, 2)):
        config = write_config(
            str(root / f'{name}.py'),
            DEMO,
            data,
            batch_size=batch,
            epochs=EPOCHS,
            options=dict(options,
                         **{'model.teacher.checkpoint': teacher_ckpt}),
            hooks=[dict(type='RecordRunHook', out_dir=str(root / name))])
        run(
            tool_cmd(
                'train.py',
                config,
                '--work-dir',
                str(root / f'work_{name}'),
                '--seed',
                '0',
                nproc=nproc))
        out[name] = read_records(str(root / name), nproc)
        out[f'{name}_config'] = config

    bank = str(root / 'bank.lmdb')
    extract_bank(out['two_config'], bank)
    # The online config, trained from the bank by the switch.
    config = write_config(
        str(root / 'bank.py'),
        DEMO,
        data,
        batch_size=2,
        epochs=EPOCHS,
        # Data-loader workers open the bank after the fork.
        workers=1,
        options=dict(options, **{'model.teacher.checkpoint': teacher_ckpt}),
        hooks=[dict(type='RecordRunHook', out_dir=str(root / 'bank'))])
    run(
        tool_cmd(
            'train.py',
            config,
            '--work-dir',
            str(root / 'work_bank'),
            '--seed',
            '0',
            '--teacher-bank',
            bank,
            nproc=2))
    out['bank'] = read_records(str(root / 'bank'), 2)
    out['bank_store'] = bank
    out['teacher_ckpt'] = teacher_ckpt
    return out


def per_step(records, key):
    """Each step's ``key`` term, averaged over the ranks."""
    return np.array([[it['losses'][key] for it in r['iters']]
                     for r in records]).mean(0)


def test_two_processes_train_like_one(runs):
    one, two = runs['one'], runs['two']
    assert [r['world_size'] for r in two] == [2, 2]
    steps = EPOCHS * NUM_VIDEOS // 4
    assert len(one[0]['iters']) == steps
    assert all(len(r['iters']) == steps for r in two)
    for i in range(steps):
        # The two half-batches are the one-process batch.
        halves = two[0]['iters'][i]['files'] + two[1]['iters'][i]['files']
        assert sorted(halves) == sorted(one[0]['iters'][i]['files'])
        assert not set(two[0]['iters'][i]['files']) & set(
            two[1]['iters'][i]['files'])
    for key in ('loss', 'loss_cls', 'loss_hallu'):
        single = np.array([it['losses'][key] for it in one[0]['iters']])
        np.testing.assert_allclose(
            per_step(two, key), single, rtol=1e-5, err_msg=key)
    # Training moved the weights, the same way.
    root = runs['root']
    a = load_state(str(root / 'work_one' / f'epoch_{EPOCHS}.pth'))
    b = load_state(str(root / 'work_two' / f'epoch_{EPOCHS}.pth'))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    assert not any(k.startswith('teacher.') for k in b)


def test_ddp_syncs_only_the_student(runs):
    for record in runs['two']:
        assert record['wrapper'] == 'MMDistributedDataParallel'
        assert record['find_unused_parameters'] is False
        # DDP's reducer holds exactly the trainable parameters: every one
        # got a gradient in every step (else the second step fails with
        # find_unused_parameters=False), and no teacher parameter is
        # synchronised.
        assert record['reducer'] == record['trainable']
        assert record['teacher']
        assert not set(record['teacher']) & set(record['reducer'])
        assert not any(n.startswith('teacher.') for n in record['trainable'])
        # The frozen teacher is the saved one, unchanged, on both ranks.
        expected = sum(v.double().sum().item()
                       for v in runs['teacher'].state_dict().values())
        assert record['teacher_sum_before'] == pytest.approx(expected)
        assert record['teacher_sum_after'] == record['teacher_sum_before']


def test_every_rank_reads_the_bank(runs):
    bank, online = runs['bank'], runs['two']
    store = FeatureBank(runs['bank_store'])
    prefix = runs['data']['video_dir']
    seen = [set(), set()]
    for rank, record in enumerate(bank):
        assert len(record['iters']) == len(online[rank]['iters'])
        for item in record['iters']:
            for filename, feats in zip(item['files'], item['teacher_feats']):
                seen[rank].add(filename)
                _, track = store.get(store.key_of(filename, prefix))
                # The target is a stored row of this very video.
                rows = np.abs(track - np.asarray(feats)[0]).max(1)
                assert rows.min() == 0.0, filename
    # Each rank read its own shard, together all videos.
    assert len(seen[0] | seen[1]) == NUM_VIDEOS
    # The bank holds what the online teacher computes (float32, and the
    # test-time clip starts at a window start), so training from it on two
    # processes gives the online run's losses on each rank.
    for rank in range(2):
        for key in ('loss_cls', 'loss_hallu'):
            np.testing.assert_allclose(
                [it['losses'][key] for it in bank[rank]['iters']],
                [it['losses'][key] for it in online[rank]['iters']],
                rtol=1e-4,
                err_msg=f'rank {rank} {key}')


def test_torchrun_test_gathers_every_sample_once(runs):
    """tools/dist_test.sh's torchrun of tools/test.py: 7 videos on 2 ranks
    (one padded), predictions gathered in dataset order, each the one a
    single process computes."""
    root, data = runs['root'], runs['data']
    ann = root / 'test_list.txt'
    with open(data['ann_file']) as f:
        lines = f.read().splitlines()[:7]
    ann.write_text('\n'.join(lines) + '\n')
    config = write_config(
        str(root / 'test.py'),
        DEMO,
        dict(data, ann_file=str(ann)),
        batch_size=2,
        epochs=1,
        options=dict(COMPARABLE,
                     **{'model.teacher.checkpoint': runs['teacher_ckpt']}))
    ckpt = str(root / 'work_two' / f'epoch_{EPOCHS}.pth')
    dump = str(root / 'preds.pkl')
    proc = run(
        tool_cmd(
            'test.py',
            config,
            ckpt,
            '--work-dir',
            str(root / 'work_test'),
            '--dump',
            dump,
            nproc=2))
    assert 'acc/top1' in proc.stdout + proc.stderr
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 7
    files = [p['filename'] for p in preds]
    names = [line.split()[0] for line in lines]
    assert files == [osp.join(data['video_dir'], n) for n in names]

    cfg = Config.fromfile(config)
    init_default_scope('mmaction')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    for i, pred in enumerate(preds):
        with torch.no_grad():
            out = model.test_step(pseudo_collate([dataset[i]]))[0]
        torch.testing.assert_close(
            dumped_score(pred), get_pred_score(out), rtol=1e-5, atol=1e-6)


def dumped_score(pred: dict) -> torch.Tensor:
    # mmaction2 1.1 dumps LabelData (pred_scores.item), 1.2 a tensor.
    if 'pred_score' in pred:
        return pred['pred_score']
    return pred['pred_scores']['item']
