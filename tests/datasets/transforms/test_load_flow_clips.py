"""LoadFlowClips on flow that tools/extract_flow.py extracts from generated
videos of known motion, and a HalluciNet (MoNet) with a flow TSN teacher
trained one step on that pipeline's output."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmaction.datasets.transforms import FormatShape, RawFrameDecode
from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import hallucinet_plugin.datasets.transforms.load_flow_clips  # noqa: F401
from hallucinet_plugin.converters.flow import dequantize_flow
from hallucinet_plugin.datasets.transforms.load_flow_clips import FLOW_TMPL
from hallucinet_plugin.utils import get_pred_score
from tests.conftest import run_tool, write_video

init_default_scope('mmaction')

SIZE, NUM_FRAMES, CLIP_LEN = 64, 12, 5
BOUND = 20.
# video path under the video root -> (label, per-frame motion (dx, dy))
VIDEOS = {
    'right/a.mp4': (0, (2, -1)),
    'left/b.mp4': (1, (-1, 2)),
}
MARGIN = 12  # border where new content enters the frame


def translating_frames(dx: int, dy: int, seed: int) -> np.ndarray:
    """(NUM_FRAMES, SIZE, SIZE, 3) uint8 of a texture moving (dx, dy)."""
    rng = np.random.default_rng(seed)
    pad = 3 * NUM_FRAMES
    canvas = rng.random((SIZE + 2 * pad, SIZE + 2 * pad, 3)) * 255
    canvas = cv2.GaussianBlur(canvas.astype(np.uint8), (0, 0), 1.5)
    return np.stack([
        canvas[pad - dy * i:pad - dy * i + SIZE,
               pad - dx * i:pad - dx * i + SIZE] for i in range(NUM_FRAMES)
    ])


@pytest.fixture(scope='module')
def flow_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('flow_data')
    video_dir = root / 'videos'
    lines = []
    for seed, (name, (label, (dx, dy))) in enumerate(VIDEOS.items()):
        os.makedirs(video_dir / osp.dirname(name), exist_ok=True)
        write_video(str(video_dir / name), translating_frames(dx, dy, seed))
        lines.append(f'{name} {label}')
    ann_file = root / 'list.txt'
    ann_file.write_text('\n'.join(lines) + '\n')
    flow_root = root / 'flow'
    run_tool('tools/extract_flow.py', str(ann_file), '--data-prefix',
             str(video_dir), '--out', str(flow_root), '--bound', str(BOUND),
             '--no-progress')
    return dict(
        video_dir=str(video_dir),
        ann_file=str(ann_file),
        flow_root=str(flow_root))


def results_for(data, name, starts, **extra):
    return dict(
        filename=osp.join(data['video_dir'], name),
        total_frames=NUM_FRAMES,
        clip_starts=np.array(starts),
        **extra)


def load(data, name='right/a.mp4', starts=(0, 6), extra=None, **kwargs):
    kwargs = dict(
        dict(
            flow_root=data['flow_root'],
            data_prefix=data['video_dir'],
            scale=None), **kwargs)
    transform = TRANSFORMS.build(dict(type='LoadFlowClips', **kwargs))
    extra = extra or {}
    return transform(results_for(data, name, starts, **extra))


def motion(clips: np.ndarray):
    """Mean (dx, dy) in pixels per segment, inside the margin."""
    flow = dequantize_flow(clips, BOUND)[..., MARGIN:-MARGIN, MARGIN:-MARGIN]
    return flow[:, 0::2].mean(axis=(1, 2, 3)), flow[:, 1::2].mean(
        axis=(1, 2, 3))


def test_default_template_is_the_extractors():
    transform = TRANSFORMS.build(dict(type='LoadFlowClips', flow_root='x'))
    assert transform.filename_tmpl == FLOW_TMPL
    assert transform.clip_len == 5 and transform.start_index == 1


@pytest.mark.parametrize('name', list(VIDEOS))
def test_known_translation_in_interleaved_channels(flow_data, name):
    out = load(flow_data, name)
    clips = out['teacher_imgs']
    assert clips.shape == (2, 2 * CLIP_LEN, SIZE, SIZE)
    assert clips.dtype == np.uint8
    # Segment starting at frame j reads flow files j + 1 .. j + 5.
    np.testing.assert_array_equal(out['teacher_flow_inds'],
                                  [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11]])
    dx, dy = VIDEOS[name][1]
    mean_x, mean_y = motion(clips)
    np.testing.assert_allclose(mean_x, dx, atol=0.35)
    np.testing.assert_allclose(mean_y, dy, atol=0.35)


def test_same_layout_as_mmaction_flow_pipeline(flow_data):
    """The channels are what RawFrameDecode + FormatShape('NCHW_Flow') give
    mmaction2's flow TSN from the same files."""
    out = load(flow_data, starts=(2, 5))
    results = dict(
        frame_dir=osp.join(flow_data['flow_root'], 'right', 'a'),
        frame_inds=out['teacher_flow_inds'].reshape(-1),
        modality='Flow',
        filename_tmpl=FLOW_TMPL,
        num_clips=2,
        clip_len=CLIP_LEN)
    results = FormatShape('NCHW_Flow')(RawFrameDecode()(results))
    np.testing.assert_array_equal(results['imgs'],
                                  out['teacher_imgs'].astype(np.float32))


def test_follows_the_student_crop_and_flip(flow_data):
    plain = load(flow_data)['teacher_imgs']
    quad = np.array([0.25, 0.5, 0.5, 0.25], np.float32)
    cropped = load(
        flow_data, extra=dict(crop_quadruple=quad))['teacher_imgs']
    np.testing.assert_array_equal(cropped, plain[:, :, 32:48, 16:48])
    flipped = load(
        flow_data,
        extra=dict(flip=True, flip_direction='horizontal'))['teacher_imgs']
    np.testing.assert_array_equal(flipped[:, 0::2],
                                  255 - plain[:, 0::2, :, ::-1])
    np.testing.assert_array_equal(flipped[:, 1::2], plain[:, 1::2, :, ::-1])
    mean_x, mean_y = motion(flipped)
    np.testing.assert_allclose(mean_x, -2, atol=0.35)
    np.testing.assert_allclose(mean_y, -1, atol=0.35)
    ignored = load(
        flow_data,
        follow_student_view=False,
        extra=dict(crop_quadruple=quad, flip=True))['teacher_imgs']
    np.testing.assert_array_equal(ignored, plain)


def test_resizes_to_scale(flow_data):
    out = load(flow_data, scale=(24, 16))
    assert out['teacher_imgs'].shape == (2, 10, 16, 24)
    expected = cv2.resize(
        load(flow_data)['teacher_imgs'][0, 0], (24, 16),
        interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out['teacher_imgs'][0, 0], expected)


def test_out_of_bound(flow_data):
    # 12 frames give 11 flows; a window at frame 8 runs past the last.
    out = load(flow_data, starts=(8, ))
    np.testing.assert_array_equal(out['teacher_flow_inds'],
                                  [[9, 10, 11, 11, 11]])
    with pytest.raises(ValueError, match='11 flows'):
        load(flow_data, starts=(8, ), out_of_bound_opt='error')


def test_missing_files_name_folder_and_frame(flow_data, tmp_path):
    with pytest.raises(FileNotFoundError, match='no flow folder .*nope'):
        load(flow_data, name='right/nope.mp4')
    broken = tmp_path / 'flow'
    os.makedirs(broken / 'right' / 'a')
    for i in range(1, 4):
        for d in 'xy':
            cv2.imwrite(
                str(broken / 'right' / 'a' / FLOW_TMPL.format(d, i)),
                np.full((8, 8), 128, np.uint8))
    transform = TRANSFORMS.build(
        dict(
            type='LoadFlowClips',
            flow_root=str(broken),
            data_prefix=flow_data['video_dir']))
    with pytest.raises(FileNotFoundError,
                       match=r'flow_x frame 4 of .*right/a.*flow_x_00004'):
        transform(results_for(flow_data, 'right/a.mp4', (0, )))


def test_marker_must_match_the_decoded_video(flow_data):
    with pytest.raises(ValueError, match='extracted from 12 frames'):
        TRANSFORMS.build(
            dict(
                type='LoadFlowClips',
                flow_root=flow_data['flow_root'],
                data_prefix=flow_data['video_dir']))(
                    dict(
                        filename=osp.join(flow_data['video_dir'],
                                          'right/a.mp4'),
                        total_frames=20,
                        clip_starts=np.array([0])))


def test_needs_clip_starts_and_valid_args(flow_data):
    transform = TRANSFORMS.build(
        dict(type='LoadFlowClips', flow_root=flow_data['flow_root']))
    with pytest.raises(KeyError, match='HalluSampleFrames'):
        transform(dict(filename='a.mp4', total_frames=12))
    with pytest.raises(ValueError, match='out_of_bound_opt'):
        TRANSFORMS.build(
            dict(type='LoadFlowClips', flow_root='x', out_of_bound_opt='x'))
    with pytest.raises(ValueError, match='clip_len'):
        TRANSFORMS.build(dict(type='LoadFlowClips', flow_root='x',
                              clip_len=0))


# ------------------------------------------------- end to end: MoNet on flow
def flow_tsn(num_classes=2):
    """A tiny flow TSN: mmaction2's recipe with ResNet-18."""
    return dict(
        type='Recognizer2D',
        backbone=dict(
            type='ResNet', depth=18, in_channels=2 * CLIP_LEN,
            pretrained=None),
        cls_head=dict(
            type='TSNHead', num_classes=num_classes, in_channels=512,
            average_clips='prob'))


def test_monet_with_flow_teacher_train_step(flow_data, tmp_path):
    torch.manual_seed(0)
    # A "trained" flow teacher checkpoint, as tools/train.py writes it.
    teacher = MODELS.build(flow_tsn()).eval()
    ckpt = str(tmp_path / 'flow_tsn.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    model = MODELS.build(
        dict(
            type='LateFusionHalluciNet',
            backbone=dict(type='timm.resnet10t', pretrained=False),
            teacher=dict(
                type='FrozenTeacher', model=flow_tsn(), checkpoint=ckpt),
            hallu_head=dict(
                type='MoNetHead',
                in_channels=512,
                out_channels=512,
                num_layers=3,
                loss_hallu=dict(
                    type='MoNetLoss',
                    alpha=10.,
                    classifier=dict(
                        type='TSNHead', num_classes=2, in_channels=512),
                    classifier_ckpt=ckpt,
                    classifier_prefix='cls_head.')),
            cls_head=dict(
                type='TSNHead', num_classes=2, in_channels=512,
                average_clips='prob'),
            hallu_cls_head=dict(
                type='TSNHead', num_classes=2, in_channels=512,
                average_clips='prob'),
            data_preprocessor=dict(
                type='HalluciNetDataPreprocessor',
                mean=[127.5] * 3,
                std=[64.] * 3,
                teacher=dict(
                    format_shape='NCHW',
                    mean=[128., 128.] * CLIP_LEN,
                    std=[128., 128.] * CLIP_LEN))))
    model.init_weights()
    torch.testing.assert_close(
        model.hallu_head.loss_hallu.classifier.fc_cls.weight,
        teacher.cls_head.fc_cls.weight)
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            ann_file=flow_data['ann_file'],
            data_prefix=dict(video=flow_data['video_dir']),
            pipeline=[
                dict(type='DecordInit'),
                dict(
                    type='HalluSampleFrames',
                    clip_len=CLIP_LEN + 1,
                    num_segments=2,
                    with_teacher=False),
                dict(type='DecordDecode'),
                dict(type='Resize', scale=(48, 48), keep_ratio=False),
                dict(type='CenterCrop', crop_size=32),
                dict(type='Flip', flip_ratio=0.5),
                dict(type='HalluSplitViews', teacher_scale=None),
                dict(
                    type='LoadFlowClips',
                    flow_root=flow_data['flow_root'],
                    data_prefix=flow_data['video_dir'],
                    scale=(32, 32)),
                dict(type='FormatShape', input_format='NCHW'),
                dict(
                    type='PackActionInputs',
                    collect_keys=('imgs', 'teacher_imgs'))
            ]))
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert batch['inputs']['teacher_imgs'][0].shape == (2, 10, 32, 32)
    data = model.data_preprocessor(batch, True)
    # 'NCHW' normalises the (N, S, 10, H, W) stack per channel.
    expected = (batch['inputs']['teacher_imgs'][1].float() - 128) / 128
    torch.testing.assert_close(data['inputs']['teacher_imgs'][1], expected)
    # The online target is the flow TSN's pooled backbone features.
    target = model.teacher_target(data['inputs'])
    with torch.no_grad():
        direct = teacher.backbone(
            data['inputs']['teacher_imgs'].flatten(0, 1)).mean((2, 3))
    torch.testing.assert_close(target, direct)

    model.train()
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_cls_hallu', 'loss_hallu',
            'loss_hallu_prob'} <= set(losses)
    total, _ = model.parse_losses(losses)
    total.backward()
    for name, param in model.named_parameters():
        if name.startswith(('teacher.', 'hallu_head.loss_hallu.')):
            assert not param.requires_grad and param.grad is None, name
        else:
            assert param.grad is not None, name
    before = model.hallu_head.x_proj.weight.detach().clone()
    wrapper.step()
    assert not torch.equal(before, model.hallu_head.x_proj.weight)
    assert not model.teacher.training

    model.eval()
    with torch.no_grad():
        samples = model.test_step(
            dict(
                inputs=[x for x in batch['inputs']['imgs']],
                data_samples=batch['data_samples']))
    scores = torch.stack([get_pred_score(s) for s in samples])
    assert scores.shape == (2, 2)
    torch.testing.assert_close(scores.sum(1), torch.ones(2))
