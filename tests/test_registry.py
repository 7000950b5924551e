"""Every class the plugin registers into mmaction2's registries builds from
a config dict, from the minimal arguments of :data:`BUILD` (timm's
``list_models()`` sweep is the model): a newly registered class fails
:func:`test_every_registered_class_has_an_entry` until it has one.

Classes that need data on disk to build (datasets, the mixed-source
sampler, the Runner) name the test module that builds them instead."""
import copy
import os.path as osp

import mmaction.registry as registries
import pytest
import torch
from mmengine.registry import Registry, init_default_scope

import hallucinet_plugin  # noqa: F401
from tests.conftest import (
    REPO,
    TINY_TEACHER_DIM,
    frozen_tiny_teacher,
    tiny_teacher,
)

STUDENT = dict(type='timm.test_resnet', pretrained=False)
STUDENT_DIM = 96  # timm test_resnet's pooled pre-logits


def registered() -> dict:
    """``name -> (registry, class)`` of every class the plugin registers."""
    found = {}
    for attr in dir(registries):
        registry = getattr(registries, attr)
        if isinstance(registry, Registry):
            for name, cls in registry.module_dict.items():
                if cls.__module__.startswith('hallucinet_plugin.'):
                    found[name] = (registry, cls)
    return found


REGISTERED = registered()

# name -> the smallest arguments that build it (besides ``type``).
BUILD = {
    # models
    'HalluciNet': dict(
        backbone=STUDENT,
        teacher=frozen_tiny_teacher(),
        hallu_head=dict(
            type='HallucinationHead',
            in_channels=STUDENT_DIM,
            out_channels=TINY_TEACHER_DIM),
        cls_head=dict(
            type='TSNHead',
            num_classes=4,
            in_channels=STUDENT_DIM + TINY_TEACHER_DIM),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            teacher=dict(mean=[127.5] * 3, std=[64.] * 3))),
    'LateFusionHalluciNet': dict(
        backbone=STUDENT,
        hallu_head=dict(
            type='MoNetHead', in_channels=STUDENT_DIM, out_channels=16),
        hallu_cls_head=dict(type='TSNHead', num_classes=4, in_channels=16),
        cls_head=dict(type='TSNHead', num_classes=4,
                      in_channels=STUDENT_DIM)),
    'FeatureSequenceRecognizer': dict(
        appearance_head=dict(type='TSNHead', num_classes=4, in_channels=8)),
    'FrozenTeacher': dict(model=tiny_teacher()),
    'PerFrameBackbone': dict(backbone=STUDENT),
    'ResNeXt3D': dict(depth=50, cardinality=2, base_planes=32,
                      stem_channels=8),
    'HallucinationHead': dict(in_channels=8, out_channels=16),
    'MoNetHead': dict(in_channels=8, out_channels=16),
    'DiveLSTMHead': dict(in_channels=8),
    'NetVLADHead': dict(num_classes=4, in_channels=8, num_clusters=2),
    'NeXtVLADHead': dict(num_classes=4, in_channels=8, num_clusters=2),
    'HallucinationLoss': dict(),
    'MoNetLoss': dict(),
    'HalluciNetDataPreprocessor': dict(),
    'FeatureSequenceDataPreprocessor': dict(),
    # transforms
    'HalluDecordInit': dict(),
    'HalluSampleFrames': dict(),
    'HalluSparseSampleFrames': dict(),
    'HalluSplitViews': dict(),
    'LoadFeatureSequence': dict(),
    'LoadFlowClips': dict(flow_root='flow'),
    'LoadTeacherFeatures': dict(store='bank.lmdb'),
    'SampleFeatureSequence': dict(num_steps=4),
    # metrics and hooks
    'DivePropertyAccuracy': dict(),
    'SpearmanCorrelation': dict(),
    'YouTube8MMetric': dict(),
    'FiniteLossHook': dict(),
    'WeightsOnlyCheckpointHook': dict(),
    'HallucinationHook': dict(),
    'PretrainedStudentHook': dict(checkpoint='stage1.pth'),
    'ResumableRandomnessHook': dict(),
}
# name -> the test module that builds it on real data.
BUILT_ELSEWHERE = {
    'HalluVideoDataset': 'tests/datasets/test_hallu_video_dataset.py',
    'MTLAQADataset': 'tests/datasets/test_mtl_aqa_dataset.py',
    'FeatureSequenceDataset':
    'tests/datasets/test_feature_sequence_dataset.py',
    'MixedSourceSampler':
    'tests/datasets/samplers/test_mixed_source_sampler.py',
    'HalluciNetRunner': 'tests/engine/test_hallucination_recipes.py',
    # Built from a model (the registry builds it with the optimizer).
    'HalluciNetOptimWrapperConstructor':
    'tests/engine/optimizers/test_hallucinet_optim_wrapper_constructor.py',
}


def test_every_registered_class_has_an_entry():
    names = set(REGISTERED)
    assert len(names) >= 35
    missing = names - set(BUILD) - set(BUILT_ELSEWHERE)
    assert not missing, f'registered without a BUILD entry: {missing}'
    stale = (set(BUILD) | set(BUILT_ELSEWHERE)) - names
    assert not stale, f'BUILD entries of unregistered names: {stale}'
    for name, test in BUILT_ELSEWHERE.items():
        assert name in open(osp.join(REPO, test)).read(), (name, test)


@pytest.mark.parametrize('name', sorted(BUILD))
def test_builds_from_its_registry(name):
    init_default_scope('mmaction')
    registry, cls = REGISTERED[name]
    # Under the default scope, by its bare name, as configs write it.
    assert registry.get(name) is cls
    # mmaction2's recognizers pop keys of the backbone dict they get.
    obj = registry.build(dict(type=name, **copy.deepcopy(BUILD[name])))
    assert type(obj) is cls
    if isinstance(obj, torch.nn.Module):
        obj.train()
        obj.eval()
        # Loss and preprocessor modules may hold no parameters; networks
        # do, and every one of them is a tensor the optimiser can see.
        for param in obj.parameters():
            assert isinstance(param, torch.nn.Parameter)


def test_frozen_parts_get_no_gradient():
    """The one registered model with a frozen part: its teacher."""
    init_default_scope('mmaction')
    model = REGISTERED['HalluciNet'][0].build(
        dict(type='HalluciNet', **copy.deepcopy(BUILD['HalluciNet'])))
    teacher = [p for n, p in model.named_parameters() if 'teacher' in n]
    student = [p for n, p in model.named_parameters() if 'teacher' not in n]
    assert teacher and student
    assert not any(p.requires_grad for p in teacher)
    assert all(p.requires_grad for p in student)
