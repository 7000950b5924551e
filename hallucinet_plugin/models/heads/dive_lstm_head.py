from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.utils import SampleList
from mmengine.model import BaseModule

from ...utils.mtl_aqa import MTL_AQA_PROPERTIES
from ...utils.typing_utils import OptConfigType

HeadOutputs = Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]


@MODELS.register_module()
class DiveLSTMHead(BaseModule):
    """LSTM over per-frame features for dive recognition and scoring.

    HalluciNet's long-term-dynamics experiments (dive recognition and action
    quality assessment on MTL-AQA from a few frames) aggregate the per-frame
    features with a single-layer LSTM; its last hidden state feeds one
    linear classifier per dive property and, optionally, a linear quality
    regressor. The head takes the per-frame features a 2D recognizer
    computes, so it plugs into ``cls_head.loss/predict(feats, data_samples,
    num_segs=S)`` like mmaction's heads.

    Ground truth is read from each data sample (metainfo or data field):
    ``dive_labels``, a dict property name -> class id, and ``score``, the
    quality score in points. The regressor works on ``score / score_scale``
    (MTL-AQA's code divides final scores by 17) and ``predict`` multiplies
    back, so ``pred_quality`` is in points. ``predict`` sets, per sample,
    ``pred_dive_scores`` (dict name -> class probabilities, shape
    (num_classes, )), ``pred_dive_labels`` (dict name -> class id) and
    ``pred_quality`` (scalar tensor).

    Args:
        in_channels (int): Per-frame feature size.
        hidden_channels (int): LSTM hidden size.
        properties (dict[str, int], optional): Dive property names and
            class counts, one classifier and one ``loss_<name>`` each; by
            default MTL-AQA's (``MTL_AQA_PROPERTIES``: position 3, armstand
            2, rotation_type 4, ss_no 10, tw_no 8); None or empty for
            quality assessment only.
        with_score (bool): Regress the quality score (``loss_score``);
            False for recognition only.
        score_scale (float): Divides the score for the regression.
        loss_property_weight (float | dict[str, float]): Weight of every
            property's cross-entropy, or one weight per property.
        loss_score_weight (float): Weight of the L2 score loss.
        dropout_ratio (float): Dropout on the last hidden state.
        seq_len (int, optional): Frames per sequence. None treats all
            ``num_segs`` frames of a video as one sequence; with a value,
            ``num_segs`` must be a multiple of it and each run of
            ``seq_len`` frames is a separate view (e.g. test-time clips):
            every view is trained on the video's labels and ``predict``
            averages probabilities and scores over views.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = 256,
                 properties: Optional[Dict[str, int]] = MTL_AQA_PROPERTIES,
                 with_score: bool = True,
                 score_scale: float = 17.0,
                 loss_property_weight: Union[float, Dict[str, float]] = 1.0,
                 loss_score_weight: float = 1.0,
                 dropout_ratio: float = 0.0,
                 seq_len: Optional[int] = None,
                 init_cfg: OptConfigType = dict(
                     type='Normal', layer='Linear', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        self.properties = dict(properties or {})
        if not self.properties and not with_score:
            raise ValueError('DiveLSTMHead: give properties, with_score=True '
                             'or both; with neither there is nothing to '
                             'learn')
        for name, num_classes in self.properties.items():
            # ModuleDict keys cannot hold dots; loss names must stay apart
            # from ``loss_score``.
            if not name.isidentifier() or name == 'score':
                raise ValueError(
                    f'DiveLSTMHead: bad property name {name!r}; use an '
                    "identifier other than 'score'")
            if not isinstance(num_classes, int) or num_classes < 2:
                raise ValueError(
                    f'DiveLSTMHead: properties[{name!r}] must be a class '
                    f'count >= 2, got {num_classes!r}')
        if isinstance(loss_property_weight, dict):
            unknown = set(loss_property_weight) - set(self.properties)
            missing = set(self.properties) - set(loss_property_weight)
            if unknown or missing:
                raise ValueError(
                    'DiveLSTMHead: loss_property_weight must name exactly '
                    f'the properties {sorted(self.properties)}; unknown '
                    f'{sorted(unknown)}, missing {sorted(missing)}')
            self.loss_property_weight = dict(loss_property_weight)
        else:
            self.loss_property_weight = {
                name: float(loss_property_weight)
                for name in self.properties
            }
        if score_scale <= 0:
            raise ValueError(
                f'DiveLSTMHead: score_scale must be > 0, got {score_scale}')
        if seq_len is not None and seq_len < 1:
            raise ValueError(
                f'DiveLSTMHead: seq_len must be >= 1, got {seq_len}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.with_score = with_score
        self.score_scale = float(score_scale)
        self.loss_score_weight = loss_score_weight
        self.seq_len = seq_len

        self.lstm = nn.LSTM(in_channels, hidden_channels, batch_first=True)
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc_properties = nn.ModuleDict({
            name: nn.Linear(hidden_channels, num_classes)
            for name, num_classes in self.properties.items()
        })
        self.fc_score = nn.Linear(hidden_channels, 1) if with_score else None

    def forward(self,
                x: torch.Tensor,
                num_segs: Optional[int] = None,
                **kwargs) -> HeadOutputs:
        """Run the LSTM over each video's frames and apply the outputs.

        Args:
            x (Tensor): Per-frame features, shape (N * num_segs, C, H, W)
                (spatially averaged) or (N * num_segs, C).
            num_segs (int): Frames per video.
            **kwargs: Other recognizer keywords (``loss_aux``,
                ``fcn_test``), unused.

        Returns:
            tuple: ``(logits, score)``: logits, dict name -> shape
            (N * V, num_classes), and the normalised score, shape (N * V, ),
            or None without a regressor; V is ``num_segs // seq_len``
            views per video (1 when ``seq_len`` is None).
        """
        if x.dim() == 4:
            # [N * num_segs, C, H, W] -> [N * num_segs, C]
            x = x.flatten(2).mean(-1)
        elif x.dim() != 2:
            raise ValueError(
                'DiveLSTMHead expects per-frame features of shape '
                f'(N * num_segs, C[, H, W]), got {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'DiveLSTMHead: features have {x.shape[1]} channels, '
                f'in_channels is {self.in_channels}')
        if num_segs is None or num_segs < 1 or x.shape[0] % num_segs:
            raise ValueError(
                f'DiveLSTMHead: num_segs={num_segs} does not divide the '
                f'{x.shape[0]} frame features of the batch')
        seq_len = self.seq_len or num_segs
        if num_segs % seq_len:
            raise ValueError(
                f'DiveLSTMHead: num_segs={num_segs} is not a multiple of '
                f'seq_len={seq_len}')
        # [N * num_segs, C] -> [N * V, seq_len, C]
        x = x.reshape(-1, seq_len, x.shape[1])
        _, (h_n, _) = self.lstm(x)
        h = self.dropout(h_n[-1])  # [N * V, hidden_channels]
        logits = {name: fc(h) for name, fc in self.fc_properties.items()}
        score = self.fc_score(h).squeeze(-1) if self.with_score else None
        return logits, score

    def loss(self, feats: torch.Tensor, data_samples: SampleList,
             **kwargs) -> Dict[str, torch.Tensor]:
        """Per-property cross-entropy and L2 score loss.

        Args:
            feats (Tensor): Per-frame features, see :meth:`forward`.
            data_samples (list[:obj:`ActionDataSample`]): With
                ``dive_labels`` and/or ``score``.
            **kwargs: ``num_segs`` and other recognizer keywords.

        Returns:
            dict[str, Tensor]: ``loss_<property>`` per property and
            ``loss_score``.
        """
        return self.loss_by_feat(self(feats, **kwargs), data_samples)

    def loss_by_feat(self, outputs: HeadOutputs,
                     data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Losses from the outputs of :meth:`forward`."""
        logits, score = outputs
        num_views = self._num_views(logits, score, data_samples)
        losses = dict()
        for name, cls_score in logits.items():
            target = self._gt_labels(data_samples, name)
            target = target.to(cls_score.device).repeat_interleave(num_views)
            losses[f'loss_{name}'] = self.loss_property_weight[name] * \
                F.cross_entropy(cls_score, target)
        if score is not None:
            target = self._gt_scores(data_samples).to(score)
            target = target.repeat_interleave(num_views) / self.score_scale
            losses['loss_score'] = self.loss_score_weight * F.mse_loss(
                score, target)
        return losses

    def predict(self, feats: torch.Tensor, data_samples: SampleList,
                **kwargs) -> SampleList:
        """Predict dive properties and quality score.

        Args:
            feats (Tensor): Per-frame features, see :meth:`forward`.
            data_samples (list[:obj:`ActionDataSample`]): One per video.
            **kwargs: ``num_segs`` and other recognizer keywords.

        Returns:
            list[:obj:`ActionDataSample`]: ``data_samples`` with
            ``pred_dive_scores``, ``pred_dive_labels`` and ``pred_quality``
            set (the first two with properties, the last with a regressor).
        """
        return self.predict_by_feat(self(feats, **kwargs), data_samples)

    def predict_by_feat(self, outputs: HeadOutputs,
                        data_samples: SampleList) -> SampleList:
        """Write the outputs of :meth:`forward` into the data samples."""
        logits, score = outputs
        num_views = self._num_views(logits, score, data_samples)
        probs = {
            # [N * V, num_classes] -> [N, num_classes]
            name: F.softmax(cls_score, dim=1).reshape(
                -1, num_views, cls_score.shape[1]).mean(1).detach()
            for name, cls_score in logits.items()
        }
        if score is not None:
            quality = score.reshape(-1, num_views).mean(1).detach()
            quality = quality * self.score_scale
        for i, sample in enumerate(data_samples):
            if probs:
                sample.set_field({n: p[i] for n, p in probs.items()},
                                 'pred_dive_scores')
                sample.set_field({n: p[i].argmax() for n, p in probs.items()},
                                 'pred_dive_labels')
            if score is not None:
                sample.set_field(quality[i], 'pred_quality')
        return data_samples

    @staticmethod
    def _num_views(logits: Dict[str, torch.Tensor],
                   score: Optional[torch.Tensor],
                   data_samples: SampleList) -> int:
        rows = score if score is not None else next(iter(logits.values()))
        if not data_samples or rows.shape[0] % len(data_samples):
            raise ValueError(
                f'DiveLSTMHead: {rows.shape[0]} sequences do not split into '
                f'{len(data_samples)} data samples')
        return rows.shape[0] // len(data_samples)

    def _gt_labels(self, data_samples: SampleList,
                   name: str) -> torch.Tensor:
        labels: List[int] = []
        for i, sample in enumerate(data_samples):
            dive_labels = sample.get('dive_labels')
            if dive_labels is None:
                raise KeyError(
                    f"DiveLSTMHead: data sample {i} has no 'dive_labels'; "
                    "pack it with PackActionInputs(meta_keys=(..., "
                    "'dive_labels'))")
            if name not in dive_labels:
                raise KeyError(
                    f'DiveLSTMHead: dive_labels of data sample {i} has no '
                    f'{name!r} (has {sorted(dive_labels)})')
            label = int(dive_labels[name])
            if not 0 <= label < self.properties[name]:
                raise ValueError(
                    f'DiveLSTMHead: dive_labels[{name!r}] of data sample {i} '
                    f'is {label}, outside [0, {self.properties[name]})')
            labels.append(label)
        return torch.tensor(labels, dtype=torch.long)

    @staticmethod
    def _gt_scores(data_samples: SampleList) -> torch.Tensor:
        scores: List[float] = []
        for i, sample in enumerate(data_samples):
            score = sample.get('score')
            if score is None:
                raise KeyError(
                    f"DiveLSTMHead: data sample {i} has no 'score'; pack it "
                    "with PackActionInputs(meta_keys=(..., 'score'))")
            scores.append(float(score))
        return torch.tensor(scores, dtype=torch.float32)
