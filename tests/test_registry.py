"""Every class the plugin registers, built through its registry and used
once (timm's ``list_models()`` sweep is the model).

:data:`CASES` holds, per registered name, the smallest arguments that build
it and, where its role needs one, a tiny input. The check is the role's
(:data:`CHECKS`): a model runs forward and backward (gradients reach every
trainable parameter and no frozen one, whose BatchNorm stays in eval mode),
a recognizer also predicts, a transform adds its keys to a results dict, a
metric evaluates a batch, a dataset reads a sample, a sampler yields its
dataset's indices, an optimizer-wrapper constructor groups exactly the
trainable parameters, a hook overrides a stage (a Runner, seconds to
build, is built through its registry by the test its row names).
A newly registered class fails :func:`test_every_registered_class_has_a_case`
until it has a row: it is then tested with no new test code."""
import copy
import json
import math
import os.path as osp
from typing import Callable, NamedTuple, Union

import mmaction.registry
import mmengine.registry
import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.dataset import ConcatDataset
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import Registry, init_default_scope

import hallucinet_plugin  # noqa: F401
from hallucinet_plugin.utils import (
    get_pred_score,
    set_gt_label,
    set_pred_score,
)
from tests.configs.config_utils import flow_frames
from tests.conftest import (
    REPO,
    TINY_TEACHER_DIM,
    frozen_tiny_teacher,
    tiny_teacher,
)
from tests.datasets.feature_sequences import write_npy_streams
from tests.feature_bank.bank_utils import PREFIX, ramp_track, write_bank
from tests.models.recognizers.recognizer_utils import make_batch

STUDENT = dict(type='timm.test_resnet', pretrained=False)
STUDENT_DIM = 96  # timm test_resnet's pooled pre-logits
NUM_CLASSES = 4


def registered() -> dict:
    """``name -> (registry, class)`` of every class whose module is in the
    plugin, in mmaction2's registries and mmengine's root ones."""
    found = {}
    for module in (mmaction.registry, mmengine.registry):
        for attr in dir(module):
            registry = getattr(module, attr)
            if not isinstance(registry, Registry):
                continue
            for name, cls in registry.module_dict.items():
                if cls.__module__.startswith('hallucinet_plugin.'):
                    assert found.get(name, (registry, cls))[1] is cls, (
                        f'{name} names two classes: a table keyed by name '
                        'cannot tell them apart')
                    found[name] = (registry, cls)
    return found


REGISTERED = registered()


class Case(NamedTuple):
    """One row of the sweep.

    Args:
        args: Build arguments besides ``type``: a dict, or ``ctx -> dict``
            for arguments that need files (:class:`Context`).
        sample: ``ctx -> input`` of the role's check: a data batch for a
            recognizer or a data preprocessor, ``(args, kwargs)`` of a
            call for other modules, a results dict for a transform, data
            samples for a metric, a model for an optimizer-wrapper
            constructor.
        keys: Keys the output must hold: those a transform adds, a
            metric's results, a dataset sample's.
        backward: False runs a module forward only, in eval mode: for a
            module whose backward costs seconds here and whose own test
            checks its gradients.
        elsewhere: The test module that builds it through its registry,
            for a class that costs seconds to build (a Runner collects its
            environment with subprocesses).
    """
    args: Union[dict, Callable] = {}
    sample: Callable = None
    keys: tuple = ()
    backward: bool = True
    elsewhere: str = None


class Context:
    """What the rows build their files and inputs from: a temporary folder
    and the session's tiny mp4 videos (``conftest.video_dataset``)."""

    def __init__(self, tmp, videos):
        self.tmp = tmp
        self.videos = videos

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def video(self) -> str:
        return f"{self.videos['video_dir']}/video_000.mp4"


def call(*args, **kwargs):
    return args, kwargs


def rand(*shape, grad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g).requires_grad_(grad)


# ---------------------------------------------------------------- samples
def hallucinet_model():
    return copy.deepcopy(dict(
        type='HalluciNet',
        backbone=STUDENT,
        teacher=frozen_tiny_teacher(),
        hallu_head=dict(
            type='HallucinationHead',
            in_channels=STUDENT_DIM,
            out_channels=TINY_TEACHER_DIM),
        cls_head=dict(
            type='TSNHead',
            num_classes=NUM_CLASSES,
            in_channels=STUDENT_DIM + TINY_TEACHER_DIM,
            average_clips='prob'),
        data_preprocessor=dict(
            type='HalluciNetDataPreprocessor',
            teacher=dict(mean=[127.5] * 3, std=[64.] * 3))))


def bank_batch(ctx):
    """Student frames and bank targets (16-d), two segments of two videos.
    """
    batch = make_batch(num_segs=2)
    batch['inputs'] = dict(
        imgs=batch['inputs']['imgs'],
        teacher_feats=[rand(2, 16, seed=i) for i in range(2)])
    return batch


def sequence_batch(ctx):
    samples = [set_gt_label(ActionDataSample(), i) for i in range(2)]
    return dict(
        inputs=dict(appearance=[rand(3, 8, seed=i) for i in range(2)]),
        data_samples=samples)


def scored_samples(field, ctx):
    out = []
    for i in range(3):
        sample = ActionDataSample(metainfo=dict(score=float(i)))
        if field == 'pred_dive_scores':
            sample.set_field(
                dict(position=torch.tensor([0.2, 0.8] if i else [0.9, 0.1])),
                field)
            sample.set_metainfo(dict(dive_labels=dict(position=min(i, 1))))
        elif field == 'pred_quality':
            sample.set_field(torch.tensor(float(i)), field)
        else:
            set_pred_score(sample, rand(NUM_CLASSES, seed=i))
            set_gt_label(sample, [i % NUM_CLASSES])
        out.append(sample)
    return out


def sampled_frames(ctx):
    """Results after ``HalluSampleFrames`` and a decode: 24 frames of a
    16x16 video, the teacher's 4-frame clips of two segments."""
    sampler = mmaction.registry.TRANSFORMS.build(
        dict(type='HalluSampleFrames', clip_len=4, num_segments=2,
             test_mode=True))
    results = sampler(dict(total_frames=24, start_index=0))
    results['imgs'] = [
        np.full((16, 16, 3), i, np.uint8) for i in results['frame_inds']
    ]
    return results


def feature_streams(ctx):
    return write_npy_streams(
        ctx.path('streams'), labels=[0, 1], dims=dict(appearance=8))


def feature_sequence_info(ctx):
    ds = mmaction.registry.DATASETS.build(
        dict(type='FeatureSequenceDataset', pipeline=[],
             **feature_streams(ctx)))
    return ds[0]


def flow_root(ctx):
    return flow_frames(dict(ctx.videos, root=ctx.path('flow'),
                            rawframes={}))['root']


def teacher_bank(ctx):
    return write_bank(ctx.tmp / 'bank', {'a.mp4': ramp_track(30)})


def mtl_aqa_annotations(ctx):
    path = ctx.path('dives.json')
    with open(path, 'w') as f:
        json.dump([
            dict(event=1, clip=c, start_frame=2 * c, end_frame=2 * c + 8,
                 position=c % 3, armstand=0, rotation_type=1, ss_no=2,
                 tw_no=0, difficulty=3.0, final_score=60.0 + c)
            for c in (1, 2)
        ], f)
    return dict(ann_file=path, pipeline=[],
                data_prefix=dict(video=ctx.videos['video_dir']))


def two_sources(ctx):
    video = dict(type='HalluVideoDataset', ann_file=ctx.videos['ann_file'],
                 pipeline=[],
                 data_prefix=dict(video=ctx.videos['video_dir']))
    return ConcatDataset([video, copy.deepcopy(video)])


# ------------------------------------------------------------------- table
CASES = {
    # recognizers
    'HalluciNet': Case(
        {k: v for k, v in hallucinet_model().items() if k != 'type'},
        sample=lambda ctx: make_batch(num_segs=2)),
    'LateFusionHalluciNet': Case(
        dict(
            backbone=STUDENT,
            hallu_head=dict(
                type='MoNetHead', in_channels=STUDENT_DIM, out_channels=16),
            hallu_cls_head=dict(
                type='TSNHead', num_classes=NUM_CLASSES, in_channels=16),
            cls_head=dict(type='TSNHead', num_classes=NUM_CLASSES,
                          in_channels=STUDENT_DIM, average_clips='prob'),
            data_preprocessor=dict(type='HalluciNetDataPreprocessor')),
        sample=bank_batch),
    'FeatureSequenceRecognizer': Case(
        dict(appearance_head=dict(
            type='TSNHead', num_classes=NUM_CLASSES, in_channels=8)),
        sample=sequence_batch),
    # other modules: the call's arguments
    'FrozenTeacher': Case(
        dict(model=tiny_teacher()),
        sample=lambda ctx: call(rand(1, 2, 3, 8, 32, 32))),
    'PerFrameBackbone': Case(
        dict(backbone=STUDENT),
        sample=lambda ctx: call(rand(2, 3, 2, 32, 32))),
    'ResNeXt3D': Case(
        dict(depth=50, cardinality=2, base_planes=32, stem_channels=8),
        sample=lambda ctx: call(rand(1, 3, 2, 16, 16)), backward=False),
    'HallucinationHead': Case(
        dict(in_channels=8, out_channels=16),
        sample=lambda ctx: call(rand(4, 8), num_segs=2)),
    'MoNetHead': Case(
        dict(in_channels=8, out_channels=16),
        sample=lambda ctx: call(rand(4, 8), num_segs=2)),
    'DiveLSTMHead': Case(
        dict(in_channels=8),
        sample=lambda ctx: call(rand(4, 8), num_segs=2)),
    'NetVLADHead': Case(
        dict(num_classes=NUM_CLASSES, in_channels=8, num_clusters=2),
        sample=lambda ctx: call(rand(2, 3, 8))),
    'NeXtVLADHead': Case(
        dict(num_classes=NUM_CLASSES, in_channels=8, num_clusters=2),
        sample=lambda ctx: call(rand(2, 3, 8))),
    # The student side (first argument) requires a gradient.
    'HallucinationLoss': Case(
        sample=lambda ctx: call(rand(4, 8, grad=True), rand(4, 8, seed=1))),
    'MoNetLoss': Case(
        dict(classifier=dict(type='TSNHead', num_classes=NUM_CLASSES,
                             in_channels=8)),
        sample=lambda ctx: call(rand(4, 8, grad=True), rand(4, 8, seed=1),
                                num_segs=2)),
    # data preprocessors: a batch
    'HalluciNetDataPreprocessor': Case(
        sample=lambda ctx: make_batch(num_segs=2)),
    'FeatureSequenceDataPreprocessor': Case(sample=sequence_batch),
    # transforms: a results dict and the keys they add
    'HalluDecordInit': Case(
        sample=lambda ctx: dict(filename=ctx.video()),
        keys=('video_reader', 'total_frames', 'avg_fps')),
    'HalluSampleFrames': Case(
        dict(clip_len=4, num_segments=2),
        sample=lambda ctx: dict(total_frames=24, start_index=0),
        keys=('frame_inds', 'student_inds', 'teacher_inds', 'clip_starts')),
    'HalluSparseSampleFrames': Case(
        dict(window=16, stride=4, clip_len=4),
        sample=lambda ctx: dict(total_frames=24, start_index=0),
        keys=('frame_inds', 'student_inds', 'teacher_inds', 'clip_starts')),
    'HalluSplitViews': Case(
        dict(teacher_scale=(8, 8)),
        sample=sampled_frames,
        keys=('imgs', 'teacher_imgs', 'img_shape')),
    'LoadFeatureSequence': Case(
        sample=feature_sequence_info,
        keys=('appearance', 'feature_keys', 'total_steps')),
    'LoadFlowClips': Case(
        lambda ctx: dict(flow_root=flow_root(ctx),
                         data_prefix=ctx.videos['video_dir'], scale=None),
        sample=lambda ctx: dict(filename=ctx.video(), total_frames=24,
                                clip_starts=np.array([0, 8])),
        keys=('teacher_imgs', 'teacher_flow_inds')),
    'LoadTeacherFeatures': Case(
        lambda ctx: dict(store=teacher_bank(ctx), clip_len=8),
        sample=lambda ctx: dict(filename=f'{PREFIX}/a.mp4',
                                clip_starts=np.array([0, 12])),
        keys=('teacher_feats', 'teacher_clip_starts')),
    'SampleFeatureSequence': Case(
        dict(num_steps=4),
        sample=lambda ctx: dict(feature_keys=['appearance'], total_steps=10,
                                appearance=np.zeros((10, 8), np.float32)),
        keys=('step_inds', )),
    # metrics: data samples and the keys of the results
    'DivePropertyAccuracy': Case(
        sample=lambda ctx: scored_samples('pred_dive_scores', ctx),
        keys=('acc/position', )),
    'SpearmanCorrelation': Case(
        sample=lambda ctx: scored_samples('pred_quality', ctx),
        keys=('aqa/spearman', )),
    'YouTube8MMetric': Case(
        sample=lambda ctx: scored_samples('pred_score', ctx),
        keys=('yt8m/hit@1', )),
    # hooks: they need a Runner to act; the check is what they override
    'FiniteLossHook': Case(),
    'WeightsOnlyCheckpointHook': Case(),
    'HallucinationHook': Case(),
    'PretrainedStudentHook': Case(dict(checkpoint='stage1.pth')),
    'ResumableRandomnessHook': Case(),
    # datasets on the session's videos or files written here
    'HalluVideoDataset': Case(
        lambda ctx: dict(ann_file=ctx.videos['ann_file'], pipeline=[],
                         data_prefix=dict(video=ctx.videos['video_dir'])),
        keys=('filename', 'label')),
    'MTLAQADataset': Case(
        mtl_aqa_annotations, keys=('filename', 'dive_labels', 'score')),
    'FeatureSequenceDataset': Case(
        lambda ctx: dict(pipeline=[], **feature_streams(ctx)),
        keys=('video_id', 'feature_streams')),
    'MixedSourceSampler': Case(
        lambda ctx: dict(dataset=two_sources(ctx), batch_size=4,
                         source_ratio=[1, 1], seed=0)),
    'HalluciNetOptimWrapperConstructor': Case(
        dict(optim_wrapper_cfg=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)),
             paramwise_cfg=dict(fc_lr5=True)),
        sample=lambda ctx: mmaction.registry.MODELS.build(
            hallucinet_model())),
    'HalluciNetRunner': Case(
        elsewhere='tests/engine/test_hallucination_recipes.py'),
}


# ------------------------------------------------------------------ checks
def tensors(out):
    """Every tensor in a (nested) output."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in tensors(item)]
    return []


def check_gradients(module, *inputs):
    """Trainable parameters got a gradient, frozen ones none; BatchNorm
    whose parameters are frozen is in eval mode in train mode."""
    for name, param in module.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f'{name}: no gradient'
        else:
            assert param.grad is None, f'{name} is frozen but got one'
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
            if not any(p.requires_grad for p in sub.parameters()):
                assert not sub.training, f'frozen {name} in train mode'
    for tensor in inputs:
        if tensor.requires_grad:
            assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def check_recognizer(model, batch):
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert any(k.startswith('loss') for k in losses), losses
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    check_gradients(model)
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(batch, False),
                      mode='predict')
    assert len(preds) == len(batch['data_samples'])
    for pred in preds:
        score = get_pred_score(pred)
        assert score.shape == (NUM_CLASSES, )
        assert torch.isfinite(score).all()


def check_model(obj, case, ctx):
    assert case.sample, 'a model needs a sample input'
    sample = case.sample(ctx)
    if isinstance(obj, BaseModel):
        return check_recognizer(obj, sample)
    if isinstance(obj, BaseDataPreprocessor):
        out = obj(sample, training=True)
        found = tensors(out['inputs'])
        assert found and all(t.is_floating_point() for t in found)
        return
    args, kwargs = sample
    if not case.backward:
        with torch.no_grad():
            out = tensors(obj.eval()(*args, **kwargs))
        assert out and all(torch.isfinite(t).all() for t in out)
        return
    obj.train()
    out = tensors(obj(*args, **kwargs))
    assert out and all(torch.isfinite(t).all() for t in out)
    trainable = [t for t in out if t.requires_grad]
    if any(p.requires_grad for p in obj.parameters()) or trainable:
        sum(t.float().mean() for t in trainable).backward()
    else:  # all frozen: nothing reaches the caller's graph
        assert not any(p.requires_grad for p in obj.parameters())
    check_gradients(obj, *[a for a in args if torch.is_tensor(a)])


def check_transform(obj, case, ctx):
    assert case.keys, 'a transform row names the keys it adds'
    results = case.sample(ctx)
    out = obj(copy.copy(results))
    assert isinstance(out, dict)
    missing = set(case.keys) - set(out)
    assert not missing, f'not added: {missing}'


def check_metric(obj, case, ctx):
    samples = case.sample(ctx)
    evaluator = Evaluator(obj)
    evaluator.process([s.to_dict() for s in samples])
    results = evaluator.evaluate(len(samples))
    assert set(case.keys) <= set(results), results
    assert all(math.isfinite(v) for v in results.values()), results


def check_hook(obj, case, ctx):
    assert any(
        getattr(type(obj), stage) is not getattr(Hook, stage)
        for stage in Hook.stages), 'overrides no stage'


def check_dataset(obj, case, ctx):
    assert len(obj) > 0
    info = obj[0]
    missing = set(case.keys) - set(info)
    assert not missing, f'sample lacks {missing}'


def check_sampler(obj, case, ctx):
    indices = list(obj)
    assert len(indices) == len(obj) > 0
    assert set(indices) <= set(range(len(obj.dataset)))


def check_optim_constructor(obj, case, ctx):
    model = case.sample(ctx)
    wrapper = obj(model)
    grouped = {id(p) for g in wrapper.optimizer.param_groups
               for p in g['params']}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert grouped == trainable


# registry name -> check of what it builds
CHECKS = {
    'model': check_model,
    'transform': check_transform,
    'metric': check_metric,
    'hook': check_hook,
    'dataset': check_dataset,
    'data sampler': check_sampler,
    'optimizer wrapper constructor': check_optim_constructor,
    'runner': None,  # every runner row is built elsewhere
}


@pytest.fixture(scope='module')
def ctx(tmp_path_factory, video_dataset):
    return Context(tmp_path_factory.mktemp('registry'), video_dataset)


def test_every_registered_class_has_a_case():
    names = set(REGISTERED)
    assert len(names) >= 35
    missing = names - set(CASES)
    assert not missing, f'registered without a row in CASES: {missing}'
    stale = set(CASES) - names
    assert not stale, f'rows of unregistered names: {stale}'
    for name, (registry, _) in REGISTERED.items():
        case = CASES[name]
        if case.elsewhere:
            with open(osp.join(REPO, case.elsewhere)) as f:
                assert name in f.read(), (name, case.elsewhere)
        else:
            assert CHECKS[registry.name], f'no check for {registry.name}'


@pytest.mark.parametrize(
    'name', sorted(n for n, case in CASES.items() if not case.elsewhere))
def test_builds_from_its_registry_and_works(name, ctx):
    init_default_scope('mmaction')
    registry, cls = REGISTERED[name]
    # Under the default scope, by its bare name, as configs write it.
    assert registry.get(name) is cls
    case = CASES[name]
    args = case.args(ctx) if callable(case.args) else case.args
    torch.manual_seed(0)
    # mmaction2's recognizers pop keys of the dicts they get.
    obj = registry.build(dict(type=name, **copy.deepcopy(args)))
    assert type(obj) is cls
    if isinstance(obj, torch.nn.Module):
        # Every parameter is one the optimiser can see.
        for param in obj.parameters():
            assert isinstance(param, torch.nn.Parameter)
    CHECKS[registry.name](obj, case, ctx)


def test_frozen_parts_get_no_gradient():
    """The one registered model with a frozen part: its teacher."""
    init_default_scope('mmaction')
    model = mmaction.registry.MODELS.build(hallucinet_model())
    teacher = [p for n, p in model.named_parameters() if 'teacher' in n]
    student = [p for n, p in model.named_parameters() if 'teacher' not in n]
    assert teacher and student
    assert not any(p.requires_grad for p in teacher)
    assert all(p.requires_grad for p in student)
