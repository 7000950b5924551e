import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.model import BaseModule

from ...utils.typing_utils import ConfigType
from ..utils import reduce_to_vector


@MODELS.register_module()
class PerFrameBackbone(BaseModule):
    """A 2D backbone applied to every frame of a clip, as a 3D backbone.

    Lets the feature bank's extraction (which runs a frozen "teacher" over
    clips) store a 2D student's per-frame appearance features: with
    1-frame clips each window's vector is that frame's features, the
    appearance stream of MoNet's feature-level setting. A timm backbone
    gives its pooled pre-logits (``forward_head(..., pre_logits=True)``),
    any other the spatial average of its output. Keys stay under
    ``backbone.``, so a student checkpoint loads as it is.

    Args:
        backbone (dict): The 2D backbone, as mmaction2's recognizers take
            it: ``timm.<name>`` (built by ``timm.create_model`` without its
            classifier), ``torchvision.<name>``, or a registered backbone,
            e.g. ``dict(type='timm.resnet10t', pretrained=False)``.
    """

    def __init__(self, backbone: ConfigType) -> None:
        super().__init__()
        backbone = dict(backbone)
        kind = backbone.pop('type')
        if kind.startswith('timm.'):
            import timm
            self.backbone = timm.create_model(
                kind[len('timm.'):], **dict(backbone, num_classes=0))
        elif kind.startswith('torchvision.'):
            import torchvision
            self.backbone = torchvision.models.__dict__[
                kind[len('torchvision.'):]](**backbone)
            # The classifier is not part of the features.
            self.backbone.fc = self.backbone.classifier = nn.Identity()
        else:
            self.backbone = MODELS.build(dict(backbone, type=kind))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame features averaged over the clip.

        Args:
            clips (Tensor): ``(N, C, T, H, W)``.

        Returns:
            Tensor: ``(N, D)``.
        """
        if clips.dim() != 5:
            raise ValueError(f'PerFrameBackbone: clips of shape '
                             f'{tuple(clips.shape)}; expected (N, C, T, H, W)')
        num, _, steps = clips.shape[:3]
        # [N, C, T, H, W] -> [N * T, C, H, W]
        frames = clips.transpose(1, 2).flatten(0, 1)
        if hasattr(self.backbone, 'forward_head'):
            feats = self.backbone.forward_head(
                self.backbone.forward_features(frames), pre_logits=True)
        else:
            feats = reduce_to_vector(self.backbone(frames))
        # [N * T, D] -> [N, T, D] -> [N, D]
        return feats.reshape(num, steps, -1).mean(dim=1)
