import pytest
import torch
import torch.nn as nn
from mmaction.registry import MODELS

from hallucinet_plugin.models.backbones.resnext3d import ResNeXt3D

TINY = dict(depth=50, base_planes=32, cardinality=4)


@pytest.fixture(scope='module')
def meta_resnext101():
    with torch.device('meta'):
        return ResNeXt3D(depth=101)


def _meta_state_shapes(**kwargs) -> dict:
    # The full-width model only exists on the meta device: no memory, no
    # init, so the test stays fast.
    with torch.device('meta'):
        model = ResNeXt3D(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_registered_in_mmaction_models():
    model = MODELS.build(dict(type='ResNeXt3D', **TINY))
    assert type(model) is ResNeXt3D
    assert model.fc is None


@pytest.mark.parametrize('base_planes,cardinality', [(32, 4), (64, 8)])
def test_forward_shape_tiny(base_planes, cardinality):
    torch.manual_seed(0)
    model = ResNeXt3D(
        depth=50, base_planes=base_planes, cardinality=cardinality)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 16 * base_planes, 1, 1, 1)
    assert model.feat_dim == 16 * base_planes
    assert torch.isfinite(out).all()
    # The last op is a ReLU.
    assert (out >= 0).all() and (out > 0).any()


def test_forward_train_backward():
    model = ResNeXt3D(**TINY)
    model.init_weights()
    model.train()
    x = torch.randn(2, 3, 8, 64, 48)
    out = model(x)
    # T: 8 / 16, H: 64 / 32, W: 48 / 32, rounded up.
    assert out.shape == (2, 512, 1, 2, 2)
    out.mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
    assert model.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('t,hw,expected', [(16, 112, (1, 4, 4)),
                                           (32, 112, (2, 4, 4)),
                                           (16, 224, (1, 7, 7)),
                                           (8, 64, (1, 2, 2))])
def test_output_size_full_width_on_meta(meta_resnext101, t, hw, expected):
    # Hara's strides: conv1 (1, 2, 2), max-pool 2, stages 1, 2, 2, 2.
    out = meta_resnext101(torch.empty(2, 3, t, hw, hw, device='meta'))
    assert out.shape == (2, 2048) + expected


def test_stem_layout_matches_hara():
    model = ResNeXt3D(stem_channels=16, **TINY)
    assert model.conv1.kernel_size == (7, 7, 7)
    assert model.conv1.stride == (1, 2, 2)
    assert model.conv1.padding == (3, 3, 3)
    assert model.conv1.bias is None
    assert model.maxpool.kernel_size == 3
    assert model.maxpool.stride == 2
    assert model.maxpool.padding == 1
    strides = [
        getattr(model, f'layer{i}')[0].conv2.stride for i in range(1, 5)
    ]
    assert strides == [(1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)]
    for i in range(1, 5):
        layer = getattr(model, f'layer{i}')
        assert layer[0].conv2.groups == 4
        # Shortcut 'B': a projection only in the first block of each stage,
        # layer1 included when stem_channels != 2 * base_planes.
        assert isinstance(layer[0].downsample, nn.Sequential)
        assert all(block.downsample is None for block in layer[1:])
    assert model.layer1[0].downsample[0].stride == (1, 1, 1)
    assert model.layer2[0].downsample[0].stride == (2, 2, 2)
    # Hara projects only where the shape changes: 64 == 2 * 32.
    assert ResNeXt3D(**TINY).layer1[0].downsample is None


def test_full_width_depth101_key_spot_checks():
    shapes = _meta_state_shapes(depth=101, num_classes=400)
    # 33 blocks x 18 tensors, 4 projections x 6, stem 6, fc 2.
    assert len(shapes) == 33 * 18 + 4 * 6 + 6 + 2
    assert shapes['conv1.weight'] == (64, 3, 7, 7, 7)
    assert shapes['bn1.running_var'] == (64, )
    assert shapes['layer1.0.conv1.weight'] == (128, 64, 1, 1, 1)
    assert shapes['layer1.0.conv2.weight'] == (128, 4, 3, 3, 3)
    assert shapes['layer1.0.downsample.0.weight'] == (256, 64, 1, 1, 1)
    assert shapes['layer1.0.downsample.1.num_batches_tracked'] == ()
    assert shapes['layer2.0.downsample.0.weight'] == (512, 256, 1, 1, 1)
    # layer3: planes 512 -> mid 32 * 512 // 32 = 512 in 32 groups of 16.
    assert shapes['layer3.22.conv2.weight'] == (512, 16, 3, 3, 3)
    assert shapes['layer3.22.conv3.weight'] == (1024, 512, 1, 1, 1)
    assert 'layer3.23.conv1.weight' not in shapes
    assert shapes['layer4.2.conv2.weight'] == (1024, 32, 3, 3, 3)
    assert shapes['layer4.2.bn3.weight'] == (2048, )
    assert shapes['layer4.0.downsample.0.weight'] == (2048, 1024, 1, 1, 1)
    assert shapes['fc.weight'] == (400, 2048)
    assert shapes['fc.bias'] == (400, )
    assert 'layer1.1.downsample.0.weight' not in shapes


@pytest.mark.parametrize('depth,blocks', [(50, (3, 4, 6, 3)),
                                          (101, (3, 4, 23, 3)),
                                          (152, (3, 8, 36, 3))])
def test_block_counts(depth, blocks):
    shapes = _meta_state_shapes(depth=depth)
    for i, num in enumerate(blocks, start=1):
        assert f'layer{i}.{num - 1}.bn3.weight' in shapes
        assert f'layer{i}.{num}.bn3.weight' not in shapes
    assert not any(k.startswith('fc.') for k in shapes)


def test_stem_channels_128_like_hara_2020():
    shapes = _meta_state_shapes(depth=50, stem_channels=128)
    assert shapes['conv1.weight'] == (128, 3, 7, 7, 7)
    assert shapes['layer1.0.downsample.0.weight'] == (256, 128, 1, 1, 1)


def test_invalid_arguments():
    with pytest.raises(KeyError, match='depth 34'):
        ResNeXt3D(depth=34)
    with pytest.raises(ValueError, match='multiple of 32'):
        ResNeXt3D(depth=50, base_planes=48)
    with pytest.raises(ValueError, match='cardinality'):
        ResNeXt3D(depth=50, base_planes=32, cardinality=0)


def test_init_weights_default():
    torch.manual_seed(0)
    model = ResNeXt3D(num_classes=7, **TINY)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
    model.init_weights()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm3d):
            assert torch.all(m.weight == 1), name
            assert torch.all(m.bias == 0), name
    # Kaiming normal, fan-out: std = sqrt(2 / (out_channels * kernel)).
    weight = model.layer4[0].conv3.weight  # (512, 32, 1, 1, 1)
    assert abs(weight.std().item() / (2 / 512)**0.5 - 1) < 0.05
    weight = model.conv1.weight  # (64, 3, 7, 7, 7)
    assert abs(weight.std().item() / (2 / (64 * 343))**0.5 - 1) < 0.05
    assert abs(model.fc.weight.std().item() - 0.01) < 0.002
    assert torch.all(model.fc.bias == 0)


def test_init_cfg_used_without_pretrained():
    model = ResNeXt3D(
        init_cfg=dict(type='Constant', layer='Conv3d', val=0.5), **TINY)
    model.init_weights()
    assert torch.all(model.layer2[1].conv2.weight == 0.5)


def test_forward_head():
    torch.manual_seed(0)
    model = ResNeXt3D(num_classes=7, **TINY)
    model.init_weights()
    model.eval()
    feat = model(torch.randn(2, 3, 8, 64, 64))
    assert feat.shape == (2, 512, 1, 2, 2)
    pooled = model.forward_head(feat, pre_logits=True)
    assert torch.allclose(pooled, feat.mean(dim=(2, 3, 4)))
    logits = model.forward_head(feat)
    assert logits.shape == (2, 7)
    assert torch.allclose(logits, model.fc(pooled))

    no_fc = ResNeXt3D(**TINY)
    assert no_fc.forward_head(feat, pre_logits=True).shape == (2, 512)
    with pytest.raises(RuntimeError, match='num_classes=None'):
        no_fc.forward_head(feat)
