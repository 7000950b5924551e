"""``tools/test.py --dump`` and ``tools/inference.py`` give the same scores
for a MoNet checkpoint (two streams, late fusion), as real subprocesses on
generated videos."""
import math
import os.path as osp
import pickle
import re

import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from hallucinet_plugin.deploy.deploy_model import quiet_logger
from hallucinet_plugin.deploy.frames import load_frames
from tests.conftest import REPO, make_video_dataset, run_tool

CONFIG = 'configs/demo/monet_resnet10t_r3d-tiny_adam-10e_demo.py'
NUM_CLASSES = 8


def cfg_options(data: dict) -> dict:
    """Offline (no teacher, appearance or MoNetLoss classifier checkpoint),
    the test split on the generated videos, one process."""
    loader = 'test_dataloader'
    return {
        'model.teacher.checkpoint': None,
        'model.appearance_ckpt': None,
        'model.hallu_head.loss_hallu.classifier_ckpt': None,
        f'{loader}.dataset.ann_file': data['ann_file'],
        f'{loader}.dataset.data_prefix.video': data['video_dir'],
        f'{loader}.batch_size': 2,
        f'{loader}.num_workers': 0,
        f'{loader}.persistent_workers': False,
    }


def save_checkpoint(cfg: Config, path: str) -> torch.nn.Module:
    """The config's model with confident classifiers in both streams (so
    that each stream moves the fused scores), saved as the Runner does
    (``state_dict``, teacher left out)."""
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with quiet_logger():
        model.init_weights()
    with torch.no_grad():
        for head in (model.cls_head, model.hallu_cls_head):
            weight = head.fc_cls.weight
            weight.normal_(0, 32 / math.sqrt(weight.shape[1]))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model.eval()


def dumped_scores(pred: dict) -> torch.Tensor:
    # mmaction2 1.1 dumps LabelData (pred_scores.item), 1.2 a tensor.
    if 'pred_score' in pred:
        return pred['pred_score']
    return pred['pred_scores']['item']


def printed_scores(stdout: str) -> dict:
    """input -> ``(num_classes, )`` scores, from the tool's top-k lines."""
    scores, current = {}, None
    for line in stdout.splitlines():
        if not line.startswith(' ') and line.endswith('):'):
            current = line.split(' (')[0]
            scores[current] = torch.full((NUM_CLASSES, ), float('nan'))
        match = re.match(r'\s+\d+\. .* \(class (\d+)\): ([0-9.]+)$', line)
        if match:
            scores[current][int(match[1])] = float(match[2])
    return scores


def test_test_tool_and_inference_tool_agree(tmp_path):
    data = make_video_dataset(
        str(tmp_path / 'data'), num_videos=4, num_frames=24, size=64)
    options = cfg_options(data)
    cli_options = [f'{k}={v}' for k, v in options.items()]
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    cfg.merge_from_dict(options)
    assert cfg.model.type == 'LateFusionHalluciNet'
    ckpt = str(tmp_path / 'monet.pth')
    model = save_checkpoint(cfg, ckpt)

    dump = str(tmp_path / 'preds.pkl')
    run_tool('tools/test.py', CONFIG, ckpt, '--work-dir',
             str(tmp_path / 'work'), '--dump', dump, '--cfg-options',
             *cli_options)
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    with open(data['ann_file']) as f:
        videos = [
            osp.join(data['video_dir'], line.split()[0])
            for line in f.read().splitlines()
        ]
    assert len(preds) == len(videos) == 4

    proc = run_tool('tools/inference.py', CONFIG, ckpt, *videos, '--topk',
                    str(NUM_CLASSES), '--cfg-options', *cli_options)
    printed = printed_scores(proc.stdout)
    assert list(printed) == videos
    for video, pred in zip(videos, preds):
        # Printed with 4 decimals.
        torch.testing.assert_close(
            printed[video], dumped_scores(pred).float(), atol=2e-4, rtol=0)

    # Both streams count: the appearance stream alone predicts otherwise.
    frames = torch.from_numpy(load_frames(cfg, videos[0]))
    imgs = (frames[None] - 127.5) / 64
    with torch.no_grad():
        (appearance, _), kwargs = model.extract_feat(imgs, test_mode=True)
        alone = model.cls_head(appearance, **kwargs).softmax(-1)[0]
    assert (alone - dumped_scores(preds[0])).abs().max() > 0.05
