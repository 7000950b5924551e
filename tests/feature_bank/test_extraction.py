"""``feature_bank/extraction.py``: the store it writes from real videos
against the online teacher, its refusals, and a killed extraction resumed
by two ranks."""
import hashlib
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
import hallucinet_plugin.datasets.transforms.load_teacher_features  # noqa
from hallucinet_plugin.feature_bank.bank_format import shard_of
from hallucinet_plugin.feature_bank.extraction import (
    collect_videos,
    extract_teacher_features,
)
from hallucinet_plugin.feature_bank.store import FeatureBank
from tests.conftest import REPO
from tests.feature_bank.bank_utils import (
    CLIP_LEN,
    META,
    NUM_FRAMES,
    TEACHER_DIM,
    make_data,
    meta_without_times,
    model_config,
    online_pipeline,
    read_raw,
    save_teacher,
    write_config,
)

init_default_scope('mmaction')


def online_model(cfg_path):
    return MODELS.build(Config.fromfile(cfg_path).model)


def bank_pipeline(store, num_segments=2):
    return [
        dict(type='DecordInit'),
        dict(
            type='HalluSampleFrames',
            clip_len=CLIP_LEN,
            num_segments=num_segments,
            with_teacher=False),
        dict(type='LoadTeacherFeatures', store=store, clip_len=CLIP_LEN),
        dict(type='DecordDecode'),
        dict(type='HalluSplitViews', teacher_scale=None),
        dict(type='FormatShape', input_format='NCHW'),
        dict(
            type='PackActionInputs', collect_keys=('imgs', 'teacher_feats'))
    ]


def test_store_layout(bank_setup):
    videos, prefixes = collect_videos(bank_setup['cfg'])
    keys = [k for k, _ in videos]
    assert keys == [f'video_{i:03d}.mp4' for i in range(4)] + ['short.mp4']
    assert prefixes == [osp.normpath(bank_setup['data']['video_dir'])]
    for name, stride in [('exact', 1), ('default', 2)]:
        bank = FeatureBank(bank_setup['stores'][name])
        meta = bank.meta
        assert sorted(bank.keys()) == sorted(keys)
        windows = (NUM_FRAMES - CLIP_LEN) // stride + 1
        expected = {k: windows for k in keys[:4]}
        expected['short.mp4'] = 1
        assert {k: len(bank.get(k)[1]) for k in keys} == expected
        assert meta['videos'] == len(keys)
        assert meta['complete'] is True
        assert meta['dim'] == TEACHER_DIM
        assert meta['stride'] == stride
        assert meta['data_prefixes'] == prefixes
        with open(bank_setup['ckpt'], 'rb') as f:
            assert meta['teacher_ckpt_sha256'] == hashlib.sha256(
                f.read()).hexdigest()
        total, feats = bank.get('video_000.mp4')
        assert total == NUM_FRAMES
        assert feats.shape == (windows, TEACHER_DIM)
        assert feats.dtype == np.float32
        bank.close()
    raw = read_raw(bank_setup['stores']['default'])
    # 28-byte header, a CRC-32 per row, the header's CRC-32, float16 values.
    assert len(raw[b'video_000.mp4']) == 28 + 7 * 4 + 4 + 7 * TEACHER_DIM * 2
    assert meta['max_abs'] == max(
        np.abs(bank.get(k)[1]).max() for k in keys)


def test_extraction_matches_online_teacher(bank_setup):
    """Every window of every video (the short one looped as the sampler
    loops it) equals HalluciNet.extract_teacher_feat on the online
    pipeline's clip."""
    model = online_model(bank_setup['cfg'])
    exact = FeatureBank(bank_setup['stores']['exact'])
    default = FeatureBank(bank_setup['stores']['default'])
    data = bank_setup['data']
    for key in exact.keys():
        total, bank = exact.get(key)
        starts = max(total - CLIP_LEN, 0) + 1
        # In test mode with one segment per start, the sampler's clips
        # start at 0, 1, ..., last: the online view of every window.
        pipeline = Compose(online_pipeline(starts, test_mode=True))
        sample = pipeline(
            dict(
                filename=osp.join(data['video_dir'], key),
                label=0,
                start_index=0,
                modality='RGB'))
        inputs = model.data_preprocessor(
            pseudo_collate([sample]), False)['inputs']
        online = model.teacher(inputs['teacher_imgs'])
        assert online.shape == bank.shape == (starts, TEACHER_DIM)
        assert online.abs().max() > 0.1
        np.testing.assert_allclose(bank, online.numpy(), rtol=1e-5, atol=1e-6)
        # float16 at stride 2: every other window, rounded.
        _, half = default.get(key)
        np.testing.assert_allclose(half, bank[::2], rtol=1e-3, atol=1e-6)
        assert not np.array_equal(half, bank[::2])
    exact.close()
    default.close()


def test_bank_training_loss_matches_online(bank_setup):
    """Same weights, same sampled frames: the bank's target and loss_hallu
    equal the online teacher's."""
    online = online_model(bank_setup['cfg'])
    bank_model = MODELS.build(model_config())
    assert bank_model.teacher is None
    bank_model.load_state_dict(online.state_dict(), strict=True)
    online.train()
    bank_model.train()

    data = bank_setup['data']
    store = bank_setup['stores']['exact']
    online_pipe = Compose(online_pipeline())
    bank_pipe = Compose(bank_pipeline(store))
    online_samples, bank_samples = [], []
    for i in range(3):
        info = dict(
            filename=osp.join(data['video_dir'], f'video_{i:03d}.mp4'),
            label=i,
            start_index=0,
            modality='RGB')
        np.random.seed(i)
        online_samples.append(online_pipe(dict(info)))
        np.random.seed(i)
        bank_samples.append(bank_pipe(dict(info)))
    for a, b in zip(online_samples, bank_samples):
        assert torch.equal(a['inputs']['imgs'], b['inputs']['imgs'])
        assert b['inputs']['teacher_feats'].shape == (2, TEACHER_DIM)
        assert b['inputs']['teacher_feats'].dtype == torch.float32

    online_data = online.data_preprocessor(pseudo_collate(online_samples),
                                           True)
    bank_data = bank_model.data_preprocessor(
        pseudo_collate(bank_samples), True)
    target = online.teacher_target(online_data['inputs'])
    torch.testing.assert_close(
        bank_model.teacher_target(bank_data['inputs']),
        target,
        rtol=1e-5,
        atol=1e-6)
    torch.manual_seed(0)
    online_losses = online(**online_data, mode='loss')
    torch.manual_seed(0)
    bank_losses = bank_model(**bank_data, mode='loss')
    assert online_losses['loss_hallu'] > 0
    torch.testing.assert_close(
        bank_losses['loss_hallu'],
        online_losses['loss_hallu'],
        rtol=1e-5,
        atol=1e-7)
    torch.testing.assert_close(bank_losses['loss_cls'],
                               online_losses['loss_cls'])


def test_refuses_a_store_of_other_settings(bank_setup, tmp_path):
    store = bank_setup['stores']['default']
    before = read_raw(store)
    other_ckpt = save_teacher(tmp_path / 'other.pth', seed=1)
    other_teacher = Config.fromfile(bank_setup['cfg'])
    other_teacher.model.teacher.model.backbone.base_channels = 4
    cases = [
        (dict(stride=3), 'stride: store 2, requested 3'),
        (dict(dtype='float32'), 'dtype'),
        (dict(cfg=write_config(tmp_path / 'c.py', bank_setup['data'],
                               other_ckpt)), 'teacher_ckpt_sha256'),
        (dict(cfg=other_teacher), 'teacher_config differs'),
    ]
    for kwargs, message in cases:
        kwargs.setdefault('cfg', bank_setup['cfg'])
        with pytest.raises(ValueError, match=message) as error:
            extract_teacher_features(
                out=store, workers=0, progress=False, **kwargs)
        assert store in str(error.value)
    assert read_raw(store) == before


def test_bad_video_is_named_and_good_ones_kept(bank_setup, tmp_path):
    data = dict(bank_setup['data'], ann_file=str(tmp_path / 'list.txt'))
    with open(data['ann_file'], 'w') as f:
        f.write('video_000.mp4 0\ngone.mp4 1\n')
    cfg = write_config(tmp_path / 'c.py', data, bank_setup['ckpt'])
    store = str(tmp_path / 'bank.lmdb')
    with pytest.raises(RuntimeError, match='gone.mp4'):
        extract_teacher_features(cfg, store, workers=0, progress=False)
    bank = FeatureBank(store)
    assert bank.keys() == ['video_000.mp4']
    assert bank.meta['complete'] is False
    bank.close()


def _count(store):
    """Committed videos, read like a second process would."""
    if not osp.isfile(osp.join(store, 'meta.json')):
        return 0
    bank = FeatureBank(store, lock=True)
    try:
        return len(bank.keys())
    finally:
        bank.close()


@pytest.mark.slow
def test_killed_extraction_resumes_to_an_identical_store(tmp_path):
    """kill -9 after 2 of 5 videos, resume with two torchrun ranks: same
    keys, same bytes, same metadata (but timestamps) as one clean run."""
    data = make_data(tmp_path / 'data')
    cfg = write_config(tmp_path / 'online.py', data,
                       save_teacher(tmp_path / 'teacher.pth', seed=2))
    # One commit per video, so that the kill lands between commits.
    args = ['--batch-size', '1', '--workers', '0', '--no-progress',
            '--commit-every', '1']
    # Byte-identical needs the same float arithmetic: the same batch size
    # and intra-op threads (1, as OMP_NUM_THREADS below), not the same
    # number of decoding workers.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = extract_teacher_features(
            cfg,
            tmp_path / 'reference.lmdb',
            batch_size=1,
            workers=2,
            progress=False)['store']
    finally:
        torch.set_num_threads(threads)

    # The CLI commits video_000 and video_001, then blocks opening
    # video_002, which is a FIFO with no writer: a deterministic point
    # with some but not all entries committed.
    video = osp.join(data['video_dir'], 'video_002.mp4')
    shutil.move(video, str(tmp_path / 'video_002.mp4'))
    os.mkfifo(video)
    store = str(tmp_path / 'resumed.lmdb')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    log = tmp_path / 'killed.log'
    with open(log, 'w') as f:
        proc = subprocess.Popen(
            [
                sys.executable, 'tools/extract_teacher_features.py', cfg,
                '--out', store, *args
            ],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while _count(store) < 2 and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, log.read_text()[-3000:]
        assert _count(store) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    os.remove(video)
    shutil.move(str(tmp_path / 'video_002.mp4'), video)

    partial, expected = read_raw(store), read_raw(reference)
    assert set(partial) == {META, b'video_000.mp4', b'video_001.mp4'}
    for key in partial:
        if key != META:
            assert partial[key] == expected[key]

    proc = subprocess.run(
        [
            sys.executable, '-m', 'torch.distributed.run', '--standalone',
            '--nproc-per-node', '2', 'tools/extract_teacher_features.py',
            cfg, '--out', store, '--launcher', 'pytorch', *args
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Rank r writes the shards r, r + 2, ... of the store's 8.
    assert 'rank 0/2] ' + store in proc.stdout
    done = {'video_000.mp4', 'video_001.mp4'}
    for rank in (0, 1):
        mine = [k.decode() for k in expected if k != META
                and shard_of(k, 8) % 2 == rank]
        skipped = len(set(mine) & done)
        assert re.search(
            rf'rank {rank}/2.* extracted {len(mine) - skipped} .*skipped '
            rf'{skipped} ', proc.stdout), proc.stdout
    resumed = read_raw(store)
    assert set(resumed) == set(expected)
    for key in expected:
        if key != META:
            assert resumed[key] == expected[key], key
    assert meta_without_times(resumed) == meta_without_times(expected)
