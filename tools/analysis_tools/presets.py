"""Benchmark presets of ``tools/benchmark.py --preset``: which configs,
at which input sizes."""
import os.path as osp
from typing import Dict

# The checkout these tools are part of: the presets name its configs.
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name -> configs (relative to the repository) and input sizes where the
# configs' pipelines do not fix them. Weights are random (no download, no
# checkpoint); the teacher's checkpoint is loaded only if it exists.
EFFICIENT_STUDENTS = ('mobilenetv3-large-100', 'mobilenetv3-small-100',
                      'efficientnet-b0', 'resnet18', 'convnext-atto')
PRESETS = {
    'paper':
    dict(
        configs=[
            'configs/vanilla_vgg11-bn_adam-30e_ucf101-static.py',
            'configs/hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py'
        ],
        student_size=None,
        teacher_shape=None,
        description='the paper pair: VGG11-bn student at 227x227, '
        '3D-ResNeXt-101 teacher at 16x112x112'),
    'demo':
    dict(
        configs=[
            'configs/demo/vanilla_resnet10t_adam-10e_demo.py',
            'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py',
            'configs/demo/hallucinet-direct_resnet10t_r3d-tiny_adam-10e_'
            'demo.py',
            'configs/demo/hallucinet-2f_resnet10t_r3d-tiny_adam-10e_demo.py'
        ],
        student_size=None,
        teacher_shape=None,
        description='the demo pair: resnet10t students (vanilla, fused, '
        'direct, 2f), tiny ResNet3d teacher, sizes from their pipelines'),
    # Efficient timm students that deployers pick for CPUs and phones
    # (MobileNetV3 large/small, EfficientNet-B0: the mobile standards;
    # ResNet-18: the classic small CNN; ConvNeXt-atto: a modern small CNN),
    # each with its vanilla twin, against the paper's teacher.
    'efficient':
    dict(
        configs=[
            f'configs/efficient/hallucinet_{s}_resnext101_adam-30e_'
            'ucf101-static.py' for s in EFFICIENT_STUDENTS
        ],
        student_size=None,
        teacher_shape=None,
        description='efficient timm students (MobileNetV3-L/S, '
        'EfficientNet-B0, ResNet-18, ConvNeXt-atto) at the paper\'s 227x227 '
        'against the 3D-ResNeXt-101 teacher at 16x112x112'),
    'efficient-mobile':
    dict(
        configs=[
            f'configs/efficient/hallucinet_{s}_resnext101_adam-30e_'
            'ucf101-static.py' for s in EFFICIENT_STUDENTS
        ],
        student_size=(160, 160),
        teacher_shape=None,
        description='the efficient students at a mobile 160x160 against the '
        '3D-ResNeXt-101 teacher at 16x112x112'),
    # The demo's student design priced where the paper runs: its tiny
    # teacher (trained in 2 minutes) is cheaper than the student itself.
    'demo-reference':
    dict(
        configs=[
            'configs/efficient/hallucinet_resnet10t_resnext101_adam-30e_'
            'ucf101-static.py'
        ],
        student_size=None,
        teacher_shape=None,
        description='the demo\'s student (resnet10t, HalluciNet) at the '
        'paper\'s 227x227 against the 3D-ResNeXt-101 teacher at 16x112x112'),
}


def preset_configs(name: str, root: str = CHECKOUT) -> Dict:
    """A preset's config paths and input sizes.

    Args:
        name (str): A key of :data:`PRESETS`.
        root (str): The directory its config paths are relative to
            (default: the checkout these tools are in).

    Returns:
        dict: The preset's entry, ``configs`` as paths under ``root``.
    """
    if name not in PRESETS:
        raise KeyError(f'unknown preset {name!r}; choose from '
                       f'{sorted(PRESETS)}')
    preset = dict(PRESETS[name])
    paths = [osp.join(root, p) for p in preset['configs']]
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'preset {name!r} needs the config {path}')
    preset['configs'] = paths
    return preset
