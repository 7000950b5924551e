"""PerFrameBackbone: a 2D student's per-frame features as a clip model."""
import pytest
import timm
import torch
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.models.teachers import FrozenTeacher


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmaction')


def test_timm_features_per_frame_averaged_over_the_clip():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='PerFrameBackbone',
        backbone=dict(type='timm.test_resnet', pretrained=False))).eval()
    clips = torch.randn(2, 3, 3, 32, 32)
    reference = timm.create_model('test_resnet', num_classes=0).eval()
    reference.load_state_dict(model.backbone.state_dict())
    with torch.no_grad():
        out = model(clips)
        frames = [reference(clips[:, :, t]) for t in range(3)]
    assert torch.allclose(out, torch.stack(frames).mean(0), atol=1e-5)
    with pytest.raises(ValueError, match=r'expected \(N, C, T, H, W\)'):
        model(clips[:, :, 0])


def test_a_student_checkpoint_loads_into_the_frozen_wrapper(tmp_path):
    student = MODELS.build(dict(
        type='HalluciNet',
        backbone=dict(type='timm.test_resnet', pretrained=False),
        cls_head=dict(type='TSNHead', num_classes=3, in_channels=96)))
    torch.nn.init.constant_(student.backbone.conv1[0].weight, 0.5)
    ckpt = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=student.state_dict()), ckpt)
    frozen = FrozenTeacher(
        dict(type='PerFrameBackbone',
             backbone=dict(type='timm.test_resnet', pretrained=False)),
        checkpoint=ckpt)
    assert torch.equal(frozen.model.backbone.conv1[0].weight,
                       student.backbone.conv1[0].weight)
    # (N, S, C, T=1, H, W) clips, one vector each: what the bank stores.
    out = frozen(torch.randn(2, 4, 3, 1, 32, 32))
    assert out.shape == (8, student.backbone.num_features)
