import logging
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule

from ...utils.checkpoint import load_checkpoint_into
from ...utils.typing_utils import OptConfigType


@MODELS.register_module()
class MoNetLoss(BaseModule):
    """MoNet's hallucination loss (Tang, Ma and Zhou, IJCAI 2019).

    Two terms, returned separately so that the engine logs both:

    * ``loss_hallu = loss_weight * mean((s_feature - t_feature) ** 2)``,
      the squared error of every step's hallucinated flow feature, averaged
      over steps, videos and feature dimensions (with
      ``use_sigmoid_mse=True``, HalluciNet's ``mean((sigmoid(s) -
      sigmoid(t)) ** 2)`` instead);
    * ``loss_hallu_prob = loss_weight * alpha * mean_i sum_k |p_ik - q_ik|``,
      the L1 distance between the class probabilities ``p = softmax(f(s))``
      and ``q = softmax(f(t))`` (sigmoids for a ``multi_class`` classifier,
      YouTube-8M's labels) that a frozen flow-stream classifier ``f``
      gives, summed over the classes ``k`` and averaged over the
      classifier's output rows ``i`` (videos for a segment-consensus head
      such as ``TSNHead``, steps for a per-step head). It asks the
      hallucinated features to carry the same class evidence as the true
      ones, not only to be close. Left out when ``classifier`` is ``None``.

    The classifier is frozen like a distillation teacher: no parameter
    requires grad, it stays in eval mode even under ``train()``, its output
    on the true features is computed under ``torch.no_grad()``, and weights
    loaded from ``classifier_ckpt`` set its ``is_init`` so its own
    ``init_weights`` never overwrites them. Gradients still flow through it
    into ``s_feature``. An ``init_cfg`` of an enclosing module that names
    layer types would reach into the classifier too, so :meth:`init_weights`
    loads the checkpoint again, last.

    Args:
        alpha (float): Weight of the probability term.
        loss_weight (float): Weight of both terms.
        classifier (dict, optional): Config of an mmaction2 head taking
            ``(x, num_segs=...)`` with ``x`` of shape
            (N * num_segs, C, 1, 1), e.g.
            ``dict(type='TSNHead', num_classes=400, in_channels=C)``.
        classifier_ckpt (str, optional): Checkpoint with the classifier's
            weights; needs ``classifier``.
        classifier_prefix (str): Prefix of the classifier's keys in the
            checkpoint's state dict, ending with ``.`` (for example
            ``'cls_head.'`` in a recognizer checkpoint), stripped on
            loading; ``''`` for a checkpoint of the classifier alone.
        use_sigmoid_mse (bool): Compare sigmoids of the features, like
            :class:`HallucinationLoss`, instead of the raw features.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 alpha: float = 10.0,
                 loss_weight: float = 1.0,
                 classifier: OptConfigType = None,
                 classifier_ckpt: Optional[str] = None,
                 classifier_prefix: str = 'cls_head.',
                 use_sigmoid_mse: bool = False,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.alpha = alpha
        self.loss_weight = loss_weight
        self.use_sigmoid_mse = use_sigmoid_mse
        self.classifier_ckpt = classifier_ckpt
        self.classifier_prefix = classifier_prefix or ''
        if classifier is None:
            if classifier_ckpt is not None:
                raise ValueError(
                    f'MoNetLoss: classifier_ckpt={classifier_ckpt!r} is '
                    'given but classifier is None; give the classifier '
                    'config too')
            self.classifier = None
            return
        self.classifier: Optional[nn.Module] = MODELS.build(classifier)
        for param in self.classifier.parameters():
            param.requires_grad = False
        self.classifier.eval()
        if classifier_ckpt is None:
            print_log(
                'MoNetLoss: the classifier has no classifier_ckpt; the '
                'probability term uses a frozen, randomly initialised '
                'classifier',
                logger='current',
                level=logging.WARNING)
        else:
            self._load_classifier()

    def _load_classifier(self) -> None:
        load_checkpoint_into(
            self.classifier,
            self.classifier_ckpt,
            prefixes={self.classifier_prefix: ''},
            key_name='classifier_ckpt',
            what="MoNetLoss's flow-stream classifier checkpoint")

    def init_weights(self) -> None:
        """Initialise, then put the classifier's loaded weights back."""
        super().init_weights()
        if self.classifier_ckpt is not None:
            self._load_classifier()

    def train(self, mode: bool = True) -> 'MoNetLoss':
        """Set train mode, keeping the frozen classifier in eval mode."""
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()
        return self

    def _logits(self, feature: torch.Tensor, num_segs: int) -> torch.Tensor:
        # [N * T, C] -> [N * T, C, 1, 1], the input of mmaction2's 2D heads.
        logits = self.classifier(
            feature.reshape(*feature.shape, 1, 1), num_segs=num_segs)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise TypeError(
                f'MoNetLoss: the classifier {type(self.classifier).__name__}'
                ' must return class scores of shape (rows, num_classes)')
        return logits

    def _probs(self, feature: torch.Tensor, num_segs: int) -> torch.Tensor:
        logits = self._logits(feature, num_segs)
        if getattr(self.classifier, 'multi_class', False):
            # Independent labels: one probability per class.
            return logits.sigmoid()
        return logits.softmax(dim=-1)

    def forward(self,
                s_feature: torch.Tensor,
                t_feature: torch.Tensor,
                num_segs: int = 1) -> Dict[str, torch.Tensor]:
        """Compute the loss terms.

        Args:
            s_feature (Tensor): Hallucinated flow features, shape
                (N * num_segs, C), the steps of a video adjacent.
            t_feature (Tensor): True flow features, same shape.
            num_segs (int): Steps per video, for the classifier.

        Returns:
            dict[str, Tensor]: ``loss_hallu`` and, with a classifier,
            ``loss_hallu_prob``; weighted scalars.
        """
        if s_feature.shape != t_feature.shape:
            raise ValueError(
                f'MoNetLoss: hallucinated shape {tuple(s_feature.shape)} '
                f'!= true shape {tuple(t_feature.shape)}')
        t_feature = t_feature.to(s_feature.dtype)
        if self.use_sigmoid_mse:
            diff = s_feature.sigmoid() - t_feature.sigmoid()
        else:
            diff = s_feature - t_feature
        losses = dict(loss_hallu=self.loss_weight * diff.pow(2).mean())
        if self.classifier is None:
            return losses
        if s_feature.dim() != 2 or s_feature.shape[0] % num_segs:
            raise ValueError(
                f'MoNetLoss: features of shape {tuple(s_feature.shape)} are '
                f'not (N * num_segs, C) with num_segs={num_segs}')
        prob_s = self._probs(s_feature, num_segs)
        with torch.no_grad():
            prob_t = self._probs(t_feature, num_segs)
        distance = (prob_s - prob_t).abs().sum(dim=-1).mean()
        losses['loss_hallu_prob'] = self.loss_weight * self.alpha * distance
        return losses
