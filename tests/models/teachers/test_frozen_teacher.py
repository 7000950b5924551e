"""FrozenTeacher: its target, its width by shape inference, and the
checkpoint of an adapted teacher."""
import pytest
import torch
from mmengine.registry import init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.models.teachers import (
    FrozenTeacher,
    build_teacher_for_shapes,
    inferred_width,
    teacher_features,
)


def timesformer(img_size=32):
    return dict(
        type='Recognizer3D',
        backbone=dict(type='TimeSformer', num_frames=4, img_size=img_size,
                      patch_size=16, embed_dims=32, num_heads=2,
                      num_transformer_layers=1),
        cls_head=dict(type='TimeSformerHead', num_classes=4,
                      in_channels=32))


def test_width_by_shape_inference_is_the_real_width():
    init_default_scope('mmaction')
    teacher = FrozenTeacher(timesformer(), clip_shape=(4, 32, 32))
    real = teacher(torch.zeros(2, 1, 3, 4, 32, 32))
    assert real.shape == (2, 32)
    assert teacher.output_width() == 32
    assert inferred_width(build_teacher_for_shapes(timesformer()),
                          (4, 32, 32)) == 32
    with pytest.raises(ValueError, match='clip_shape is not set'):
        FrozenTeacher(timesformer()).output_width()


def test_a_layer_that_never_runs_is_an_error():
    init_default_scope('mmaction')
    model = build_teacher_for_shapes(timesformer())
    clip = torch.empty(1, 1, 3, 4, 32, 32, device='meta')
    with pytest.raises(KeyError, match="'backbone.nope' is not a submodule"):
        teacher_features(model, clip, 'backbone.nope')
    # The classifier is not on the way to the backbone output: not a
    # silent fallback to the backbone's output.
    with pytest.raises(RuntimeError, match="'cls_head' did not run"):
        teacher_features(model, clip, 'cls_head')


def test_a_checkpoint_of_another_geometry_is_refused_naming_the_options(
        tmp_path):
    init_default_scope('mmaction')
    ckpt = str(tmp_path / 'teacher_16px.pth')
    torch.save(dict(state_dict=FrozenTeacher(
        timesformer(img_size=16)).model.state_dict()), ckpt)
    with pytest.raises(ValueError, match=r'other shapes.*pos_embed.*'
                       r'teacher_cfg_options'):
        FrozenTeacher(timesformer(img_size=32), checkpoint=ckpt)
