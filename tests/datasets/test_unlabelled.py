"""The --unlabelled config switch (use_unlabelled): what it writes, that the
written-out configs equal it, and its refusals."""
import os.path as osp

import pytest
from mmengine.config import Config

from hallucinet_plugin.datasets.unlabelled import use_unlabelled
from hallucinet_plugin.feature_bank.switch import use_teacher_bank
from tests.conftest import REPO

DEMO = osp.join(REPO, 'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-'
                '10e_demo.py')
VANILLA = osp.join(REPO, 'configs/demo/vanilla_resnet10t_adam-10e_demo.py')


@pytest.fixture
def unlabelled(tmp_path):
    path = tmp_path / 'unlabelled.txt'
    path.write_text('a.mp4\nb.mp4\n')
    return str(path)


def test_switch_mixes_batches_in_the_ratio(unlabelled):
    cfg = use_unlabelled(Config.fromfile(DEMO), unlabelled, ratio=2.5)
    loader = cfg.train_dataloader
    # 16 labelled videos per batch, 40 unlabelled on top.
    assert loader.batch_size == 56
    assert loader.sampler == dict(
        type='MixedSourceSampler',
        batch_size=56,
        source_ratio=[16, 40],
        shuffle=True)
    labelled, extra = loader.dataset.datasets
    assert labelled == Config.fromfile(DEMO).train_dataloader.dataset
    assert extra.ann_file == unlabelled and extra.unlabelled
    assert extra.data_prefix.video == labelled.data_prefix.video
    assert extra.pipeline == labelled.pipeline
    assert not extra.ignore_labels


@pytest.mark.parametrize('config', [
    'configs/demo/hallucinet-unlabelled_resnet10t_r3d-tiny_adam-10e_demo.py',
    'configs/hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static-'
    'kinetics400-unlabelled.py'
])
def test_written_out_configs_equal_the_switch(config, unlabelled):
    path = osp.join(REPO, config)
    written = Config.fromfile(path)
    extra = written.train_dataloader.dataset.datasets[1]
    with open(path) as f:
        base = next(line for line in f if line.startswith('_base_'))
    base = osp.join(osp.dirname(path), base.split("'")[1])
    # The switch checks that the list exists (the Kinetics one is not
    # here): an existing stand-in, then the written path.
    switched = use_unlabelled(
        Config.fromfile(base),
        unlabelled,
        ratio=1,
        ignore_labels=True,
        data_prefix=extra.data_prefix.video)
    switched.train_dataloader.dataset.datasets[1].ann_file = extra.ann_file
    assert written.train_dataloader.to_dict() == \
        switched.train_dataloader.to_dict()


def test_bank_is_read_by_both_datasets_with_their_own_prefix(
        tmp_path, unlabelled):
    store = tmp_path / 'bank.lmdb'
    store.mkdir()
    cfg = use_teacher_bank(Config.fromfile(DEMO), str(store))
    use_unlabelled(cfg, unlabelled, data_prefix='/data/kinetics')
    prefixes = []
    for dataset in cfg.train_dataloader.dataset.datasets:
        load = [t for t in dataset.pipeline
                if t['type'] == 'LoadTeacherFeatures']
        assert len(load) == 1 and load[0]['store'] == str(store)
        prefixes.append(load[0]['data_prefix'])
    assert prefixes == ['data/demo/videos', '/data/kinetics']


def test_refusals(tmp_path, unlabelled):
    with pytest.raises(ValueError, match='model.hallu_head is not set'):
        use_unlabelled(Config.fromfile(VANILLA), unlabelled)
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        use_unlabelled(Config.fromfile(DEMO), str(tmp_path / 'missing.txt'))
    for ratio in (0, 33, 1e6):
        # 1e6 took minutes to build its sampler before it was bounded.
        with pytest.raises(ValueError, match=r'ratio must be in \(0, 32\]'):
            use_unlabelled(Config.fromfile(DEMO), unlabelled, ratio=ratio)
    with pytest.raises(ValueError, match='gives no unlabelled sample'):
        use_unlabelled(Config.fromfile(DEMO), unlabelled, ratio=0.01)
    cfg = use_unlabelled(Config.fromfile(DEMO), unlabelled)
    with pytest.raises(ValueError, match='already mixes'):
        use_unlabelled(cfg, unlabelled)
    cfg = Config.fromfile(DEMO)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler')
    with pytest.raises(ValueError, match='only configs with the '
                       'DefaultSampler'):
        use_unlabelled(cfg, unlabelled)


DIVES = osp.join(REPO, 'configs/mtl_aqa/demo/hallucinet-lstm_resnet10t_'
                 'r3d-tiny_1x16x6-adam-20e_dive-demo.py')


def test_unlabelled_dives_are_windows_of_event_videos(tmp_path):
    """For MTL-AQA-style data the switch adds an MTLAQADataset of the
    unlabelled dives (a split of the annotation dict, or a record table),
    not a video list."""
    split = tmp_path / 'unlabelled_split_0.pkl'
    split.write_bytes(b'')
    cfg = use_unlabelled(Config.fromfile(DIVES), str(split), ratio=1)
    labelled, extra = cfg.train_dataloader.dataset.datasets
    assert labelled == Config.fromfile(DIVES).train_dataloader.dataset
    assert extra.type == 'MTLAQADataset' and extra.unlabelled
    assert extra.split_file == str(split)
    assert extra.ann_file == labelled.ann_file
    assert extra.pipeline == labelled.pipeline
    assert extra.data_prefix == labelled.data_prefix
    table = tmp_path / 'dives.json'
    table.write_text('[]')
    extra = use_unlabelled(
        Config.fromfile(DIVES), str(table),
        data_prefix='/data/events').train_dataloader.dataset.datasets[1]
    assert (extra.ann_file, extra.split_file) == (str(table), None)
    assert extra.data_prefix == dict(video='/data/events')
    other = tmp_path / 'dives.txt'
    other.write_text('a.mp4\n')
    with pytest.raises(ValueError, match='split file'):
        use_unlabelled(Config.fromfile(DIVES), str(other))
