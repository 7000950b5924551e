"""Inference with a tiny trained HalluciNet on red and blue inputs."""
import os

import cv2
import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from hallucinet_plugin.deploy.deploy_model import quiet_logger
from hallucinet_plugin.deploy.frames import list_frames, load_frames
from hallucinet_plugin.deploy.inference import inference, load_label_map
from hallucinet_plugin.deploy.onnx_export import export_onnx
from hallucinet_plugin.utils import set_gt_label
from tests.conftest import frozen_tiny_teacher, run_tool, write_video

CLASSES = ['red', 'blue']
CLIP_LEN, SIZE = 8, 32


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine
    waiting for a descheduled thread costs ten times the work; tools run as
    subprocesses inherit OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    old = os.environ.get('OMP_NUM_THREADS')
    torch.set_num_threads(1)
    os.environ['OMP_NUM_THREADS'] = '1'
    yield
    torch.set_num_threads(threads)
    if old is None:
        del os.environ['OMP_NUM_THREADS']
    else:
        os.environ['OMP_NUM_THREADS'] = old


def model_config() -> dict:
    return dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        teacher=frozen_tiny_teacher(num_classes=2),
        hallu_head=dict(
            type='HallucinationHead', in_channels=96, out_channels=64),
        cls_head=dict(
            type='TSNHead',
            num_classes=2,
            in_channels=96 + 64,
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            teacher=dict(mean=[127.5] * 3, std=[64.] * 3)))


def colour_frames(label: int, num: int, size: int,
                  rng: np.random.Generator) -> np.ndarray:
    """``(num, size, size, 3)`` uint8 RGB frames, all red (0) or all blue
    (1), with noise."""
    frames = rng.integers(0, 50, (num, size, size, 3))
    frames[..., 0 if label == 0 else 2] += 180
    return frames.astype(np.uint8)


def train_tiny(steps: int = 30) -> torch.nn.Module:
    """A few dozen Adam steps of the full HalluciNet (online teacher) on
    red vs blue."""
    init_default_scope('mmaction')
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MODELS.build(model_config())
    with quiet_logger():
        model.init_weights()
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=2e-3))
    for _ in range(steps):
        labels = [0, 1, 0, 1]
        clips = [colour_frames(y, CLIP_LEN, SIZE, rng) for y in labels]
        batch = dict(
            inputs=dict(
                # The student sees the clip's first frame.
                imgs=[torch.from_numpy(c[:1]).permute(0, 3, 1, 2)
                      for c in clips],
                # [T, H, W, C] -> [S=1, C, T, H, W]
                teacher_imgs=[
                    torch.from_numpy(c).permute(3, 0, 1, 2)[None]
                    for c in clips
                ]),
            data_samples=[set_gt_label(ActionDataSample(), y)
                          for y in labels])
        losses = model.train_step(batch, wrapper)
    assert set(losses) >= {'loss_cls', 'loss_hallu'}
    return model.eval()


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> dict:
    """Checkpoint, config file and real inputs of both classes."""
    root = tmp_path_factory.mktemp('inference')
    model = train_tiny()
    ckpt = str(root / 'tiny.pth')
    # The teacher is left out of the state dict, as in real checkpoints.
    torch.save({'state_dict': model.state_dict()}, ckpt)
    cfg = Config(
        dict(
            model=model_config(),
            label_map=CLASSES,
            test_pipeline=[
                dict(type='DecordInit'),
                dict(
                    type='HalluSampleFrames',
                    clip_len=CLIP_LEN,
                    with_teacher=False,
                    test_mode=True),
                dict(type='DecordDecode'),
                dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=False),
                dict(type='FormatShape', input_format='NCHW'),
                dict(type='PackActionInputs')
            ]))
    config = str(root / 'tiny_config.py')
    cfg.dump(config)
    rng = np.random.default_rng(1)
    paths = {}
    for label, name in enumerate(CLASSES):
        frames = colour_frames(label, 20, 64, rng)
        paths[f'{name}_video'] = str(root / f'{name}.mp4')
        write_video(paths[f'{name}_video'], frames)
        frame_dir = root / f'{name}_frames'
        frame_dir.mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(frame_dir / f'img_{i + 1}.png'), frame[..., ::-1])
        paths[f'{name}_frames'] = str(frame_dir)
        paths[f'{name}_image'] = str(root / f'{name}.jpg')
        cv2.imwrite(paths[f'{name}_image'], frames[3][..., ::-1])
    return dict(root=root, ckpt=ckpt, config=config, cfg=cfg, **paths)


def parse_top1(stdout: str) -> dict:
    """input -> top-1 class name, from the tool's output."""
    top1, current = {}, None
    for line in stdout.splitlines():
        if not line.startswith(' ') and line.endswith('):'):
            current = line.split(' (')[0]
        elif line.strip().startswith('1. '):
            top1[current] = line.strip()[3:].split(' (class')[0]
    return top1


def test_inference_tool_pytorch(trained):
    """Video, frame directory and single image through the real tool."""
    root = trained['root']
    labels = root / 'labels.txt'
    labels.write_text('RED\nBLUE\n')
    inputs = [trained['red_video'], trained['blue_frames'],
              trained['red_image'], trained['blue_video']]
    proc = run_tool('tools/inference.py', trained['config'],
                    trained['ckpt'], *inputs, '--topk', '2',
                    '--label-map', str(labels), '--save-hallu',
                    str(root / 'hallu.npy'))
    assert parse_top1(proc.stdout) == {
        trained['red_video']: 'RED',
        trained['blue_frames']: 'BLUE',
        trained['red_image']: 'RED',
        trained['blue_video']: 'BLUE',
    }
    assert f'{trained["red_video"]} (video, frames 1x3x32x32' in proc.stdout
    assert f'{trained["blue_frames"]} (frames,' in proc.stdout
    assert f'{trained["red_image"]} (image,' in proc.stdout
    hallu = np.load(root / 'hallu.npy')
    # (inputs, segments, teacher dim); the head ends in ReLU.
    assert hallu.shape == (4, 1, 64)
    assert (hallu >= 0).all() and hallu.any()


def test_inference_onnx_matches_pytorch(trained):
    """The exported file predicts what the checkpoint predicts; class names
    come from the config's label_map."""
    cfg = trained['cfg']
    onnx_file = str(trained['root'] / 'tiny.onnx')
    export_onnx(cfg, trained['ckpt'], onnx_file, with_hallu=True)
    inputs = [trained['blue_video'], trained['red_frames'],
              trained['blue_image']]
    from_onnx = inference(
        cfg, inputs, onnx_file=onnx_file, k=1, with_hallu=True)
    from_torch = inference(
        cfg, inputs, checkpoint=trained['ckpt'], k=1, with_hallu=True)
    assert [r['topk'][0]['name'] for r in from_onnx] == ['blue', 'red',
                                                          'blue']
    for a, b in zip(from_onnx, from_torch):
        assert a['backend'].startswith('onnxruntime')
        assert b['backend'].startswith('PyTorch')
        assert a['topk'][0]['score'] > 0.9
        np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-4)
        np.testing.assert_allclose(a['hallu'], b['hallu'], atol=1e-3)


def test_frames_follow_the_pipeline(trained, tmp_path):
    """A directory reads in natural order; an image becomes every frame."""
    for i in (10, 2, 1):
        frame = np.full((40, 40, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f'img_{i}.png'), frame)
    (tmp_path / 'notes.txt').write_text('not a frame')
    names = [os.path.basename(p) for p in list_frames(tmp_path)]
    assert names == ['img_1.png', 'img_2.png', 'img_10.png']
    two_frames = Config(trained['cfg'].to_dict())
    two_frames.test_pipeline[1]['student_offsets'] = [0, 4]
    frames = load_frames(two_frames, trained['red_image'])
    assert frames.shape == (2, 3, SIZE, SIZE)
    np.testing.assert_array_equal(frames[0], frames[1])
    assert frames[:, 0].mean() > 150 > frames[:, 2].mean()


def test_bad_inputs(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match='input not found'):
        load_frames(trained['cfg'], str(tmp_path / 'missing.mp4'))
    with pytest.raises(FileNotFoundError, match='no image files'):
        load_frames(trained['cfg'], str(tmp_path))
    (tmp_path / 'labels.txt').write_text('red\n\nblue\n')
    with pytest.raises(ValueError, match='no blank lines'):
        load_label_map(str(tmp_path / 'labels.txt'))
    with pytest.raises(ValueError, match='label map has 3 names'):
        inference(
            trained['cfg'], [trained['red_image']],
            checkpoint=trained['ckpt'],
            label_map=['a', 'b', 'c'])
