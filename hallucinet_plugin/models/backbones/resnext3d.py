from collections import OrderedDict
from typing import Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, kaiming_init, normal_init
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.checkpoint import load_checkpoint_into, state_dict_of
from ...utils.typing_utils import OptConfigType

_BN_COUNTER = 'num_batches_tracked'


def hara_state_dict(checkpoint: Mapping, source: str = '<checkpoint>'
                    ) -> Tuple['OrderedDict[str, torch.Tensor]', bool]:
    """The :class:`ResNeXt3D` state dict in a checkpoint saved by Hara et
    al.'s training code.

    kenshohara/3D-ResNets-PyTorch saves ``{'arch': 'resnext-101', 'epoch':
    ..., 'state_dict': ..., 'optimizer': ...}`` from a model wrapped in
    ``nn.DataParallel``: stripped of ``module.``, the keys are ours. Files
    written by PyTorch < 0.4 (the 2017 Kinetics models) have no BatchNorm
    ``num_batches_tracked``; they are added as 0, which only matters for
    BatchNorm with ``momentum=None``.

    Args:
        checkpoint (Mapping): The checkpoint read (weights only).
        source (str): Names it in error messages.

    Returns:
        tuple: The state dict and whether BatchNorm counters were added.
    """
    state_dict = state_dict_of(checkpoint, source=source)
    if any(k.endswith('.' + _BN_COUNTER) for k in state_dict):
        return state_dict, False
    for key in list(state_dict):
        if key.endswith('.running_mean'):
            name = key[:-len('running_mean')] + _BN_COUNTER
            state_dict[name] = torch.tensor(0, dtype=torch.long)
    return state_dict, True


def resnext3d_state_dict(checkpoint: Mapping, source: str = '<checkpoint>'
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """The :class:`ResNeXt3D` state dict, ``fc.*`` included when present, in
    a raw Hara checkpoint or one written by ``convert_hara_checkpoint``
    (whose ``meta`` records the prefixes it gave the keys).

    Args:
        checkpoint (Mapping): The checkpoint read (weights only).
        source (str): Names it in error messages.

    Returns:
        OrderedDict[str, Tensor]: Keys as in ``ResNeXt3D.state_dict()``.
    """
    meta = checkpoint.get('meta')
    if not (isinstance(meta, dict) and meta.get('source') == 'hara'):
        return hara_state_dict(checkpoint, source)[0]
    prefix = meta.get('prefix')
    fc_prefix = meta.get('fc_prefix')
    if not isinstance(prefix, str) or not isinstance(fc_prefix,
                                                     (str, type(None))):
        raise ValueError(f"{source}: 'meta' of a converted Hara checkpoint "
                         "needs a str 'prefix' and a str or None 'fc_prefix'")
    state_dict = OrderedDict()
    for key, value in state_dict_of(checkpoint, source=source).items():
        if fc_prefix is not None and key.startswith(fc_prefix):
            state_dict['fc.' + key[len(fc_prefix):]] = value
        elif key.startswith(prefix):
            state_dict[key[len(prefix):]] = value
        else:
            raise ValueError(f'{source}: key {key!r} has neither the '
                             f'prefix {prefix!r} nor {fc_prefix!r} recorded '
                             "in 'meta'")
    return state_dict


class ResNeXtBottleneck3D(nn.Module):
    """3D ResNeXt bottleneck: 1x1x1 -> grouped 3x3x3 -> 1x1x1 convolution.

    Submodule names follow Hara et al.'s ``ResNeXtBottleneck`` so that their
    checkpoints load key for key.

    Args:
        in_channels (int): Input channels.
        planes (int): Stage width; the block outputs ``2 * planes``.
        cardinality (int): Number of groups of the middle convolution.
        stride (int): Stride of the middle convolution, in T, H and W.
        downsample (nn.Module, optional): Projection of the shortcut.
    """

    expansion = 2

    def __init__(self,
                 in_channels: int,
                 planes: int,
                 cardinality: int,
                 stride: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        mid_channels = cardinality * (planes // 32)
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv3d(
            in_channels, mid_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid_channels)
        self.conv2 = nn.Conv3d(
            mid_channels,
            mid_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            groups=cardinality,
            bias=False)
        self.bn2 = nn.BatchNorm3d(mid_channels)
        self.conv3 = nn.Conv3d(
            mid_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, T, H, W) -> (N, 2 * planes, T', H', W')."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@MODELS.register_module()
class ResNeXt3D(BaseModule):
    """3D-ResNeXt of Hara et al. (CVPR 2018), HalluciNet's teacher.

    The layout, and every parameter and buffer name, is that of
    ``models/resnext.py`` in kenshohara/3D-ResNets-PyTorch (shortcut type
    'B'), so their Kinetics checkpoints load one to one once the
    ``module.`` prefix is stripped (see :func:`hara_state_dict`).
    Stem: 7x7x7 convolution with stride (1, 2, 2), then a 3x3x3 max-pool
    with stride 2 in T, H and W; stages of widths ``base_planes * (1, 2, 4,
    8)`` with strides 1, 2, 2, 2, each block widening to twice its planes.

    Args:
        depth (int): 50, 101 or 152.
        cardinality (int): Groups of every middle convolution.
        in_channels (int): Input channels.
        base_planes (int): Planes of the first stage, a multiple of 32 (the
            middle width of a block is ``cardinality * planes // 32``).
            Output channels are ``16 * base_planes``; smaller values give
            tiny models for tests.
        stem_channels (int): Output channels of ``conv1``. 64 in Hara's 2017
            models (``resnext-101-kinetics.pth``); 128 in the ResNeXt of
            their 2020 code.
        num_classes (int, optional): If set, keep Hara's classifier ``fc``
            (used by :meth:`forward_head`) so that full checkpoints load.
        pretrained (str, optional): Path to a Hara checkpoint, raw or
            converted; loaded by :meth:`init_weights`.
        init_cfg (dict, optional): Initialisation config, used only when
            ``pretrained`` is None.
    """

    arch_settings = {
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
    }

    def __init__(self,
                 depth: int = 101,
                 cardinality: int = 32,
                 in_channels: int = 3,
                 base_planes: int = 128,
                 stem_channels: int = 64,
                 num_classes: Optional[int] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for ResNeXt3D, expected '
                           f'one of {sorted(self.arch_settings)}')
        if base_planes < 32 or base_planes % 32:
            raise ValueError('base_planes must be a positive multiple of 32 '
                             '(middle width = cardinality * planes // 32), '
                             f'got {base_planes}')
        if cardinality < 1:
            raise ValueError(f'cardinality must be >= 1, got {cardinality}')
        self.depth = depth
        self.cardinality = cardinality
        self.in_channels = in_channels
        self.base_planes = base_planes
        self.stem_channels = stem_channels
        self.num_classes = num_classes
        self.pretrained = pretrained
        self.stage_blocks = self.arch_settings[depth]

        self.conv1 = nn.Conv3d(
            in_channels,
            stem_channels,
            kernel_size=7,
            stride=(1, 2, 2),
            padding=3,
            bias=False)
        self.bn1 = nn.BatchNorm3d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)

        self._inplanes = stem_channels
        self.res_layers = []
        for i, num_blocks in enumerate(self.stage_blocks):
            layer = self._make_layer(
                planes=base_planes * 2**i,
                num_blocks=num_blocks,
                stride=1 if i == 0 else 2)
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, layer)
            self.res_layers.append(layer_name)
        self.feat_dim = self._inplanes

        # Hara's fc has no counterpart in mmaction2's backbone API; kept
        # only so that full checkpoints load and forward_head can use it.
        self.fc = None
        if num_classes is not None:
            self.fc = nn.Linear(self.feat_dim, num_classes)

    def _make_layer(self, planes: int, num_blocks: int,
                    stride: int) -> nn.Sequential:
        out_channels = planes * ResNeXtBottleneck3D.expansion
        downsample = None
        # Shortcut type 'B': project only where the shape changes, which
        # includes layer1 (stem_channels -> 2 * base_planes).
        if stride != 1 or self._inplanes != out_channels:
            downsample = nn.Sequential(
                nn.Conv3d(
                    self._inplanes,
                    out_channels,
                    kernel_size=1,
                    stride=stride,
                    bias=False), nn.BatchNorm3d(out_channels))
        blocks = [
            ResNeXtBottleneck3D(self._inplanes, planes, self.cardinality,
                                stride, downsample)
        ]
        self._inplanes = out_channels
        for _ in range(1, num_blocks):
            blocks.append(
                ResNeXtBottleneck3D(self._inplanes, planes, self.cardinality))
        return nn.Sequential(*blocks)

    def init_weights(self) -> None:
        """Load ``pretrained``, else apply ``init_cfg``, else initialise like
        Hara et al. (Kaiming normal, fan-out, for convolutions; BatchNorm
        weight 1, bias 0)."""
        if self.pretrained is not None:
            self.load_pretrained(self.pretrained)
            # Keeps a parent's init_weights from overwriting the weights.
            self.is_init = True
        elif self.init_cfg is not None:
            super().init_weights()
        else:
            for m in self.modules():
                if isinstance(m, nn.Conv3d):
                    kaiming_init(m, mode='fan_out', nonlinearity='relu')
                elif isinstance(m, _BatchNorm):
                    constant_init(m, 1)
            if self.fc is not None:
                normal_init(self.fc, std=0.01)

    def load_pretrained(self, filename: str) -> None:
        """Load a raw or converted Hara checkpoint, strictly.

        Hara's classifier ``fc`` is dropped when ``num_classes`` is None;
        every other key must match.

        Args:
            filename (str): Path to the checkpoint.
        """
        load_checkpoint_into(
            self,
            filename,
            key_name='pretrained',
            what='a Hara 3D-ResNeXt checkpoint, raw or converted',
            convert=resnext3d_state_dict,
            exclude=('fc.', ) if self.fc is None else ())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map of the last stage, unpooled (mmaction2 heads pool).

        Args:
            x (torch.Tensor): Clips, shape (N, in_channels, T, H, W).

        Returns:
            torch.Tensor: Shape (N, 16 * base_planes, T', H', W') with
            T' = ceil(T / 16), H' = ceil(H / 32), W' = ceil(W / 32).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for layer_name in self.res_layers:
            x = getattr(self, layer_name)(x)
        return x

    def forward_head(self,
                     x: torch.Tensor,
                     pre_logits: bool = False) -> torch.Tensor:
        """Hara's head: global average pool, then ``fc``.

        Args:
            x (torch.Tensor): Output of :meth:`forward`, shape
                (N, 16 * base_planes, T', H', W').
            pre_logits (bool): Return the pooled features, shape
                (N, 16 * base_planes), without ``fc``.

        Returns:
            torch.Tensor: Logits, shape (N, num_classes), or pooled features.
        """
        # Hara pools with a fixed window equal to the whole map at the
        # training size (16 x 112 x 112), i.e. a global average there.
        x = x.mean(dim=(2, 3, 4))
        if pre_logits:
            return x
        if self.fc is None:
            raise RuntimeError('ResNeXt3D was built with num_classes=None '
                               'and has no fc; use pre_logits=True')
        return self.fc(x)
