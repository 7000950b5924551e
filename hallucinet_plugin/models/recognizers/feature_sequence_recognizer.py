import copy
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmaction.utils import SampleList
from mmengine.model import BaseModel

from ...utils import set_pred_label, set_pred_score
from ...utils.checkpoint import load_checkpoint_into
from ...utils.typing_utils import OptConfigType
from .labelled_rows import labelled_head_loss, labelled_samples

MOTION_INPUTS = ('real', 'hallucinated')


def _num_steps(inputs: Dict[str, torch.Tensor]) -> int:
    """``T`` of a batch of ``(N, T, D)`` streams."""
    return next(iter(inputs.values())).shape[1]
_PARTS = ('appearance_head', 'motion_head', 'hallu_head')


@MODELS.register_module()
class FeatureSequenceRecognizer(BaseModel):
    """MoNet's two-stream classification on precomputed feature sequences.

    Tang, Ma and Zhou, "Hallucinating Optical Flow Features for Video
    Classification", IJCAI 2019. Each video is a sequence of appearance
    features ``(T, D_a)`` (and, where computed, motion features
    ``(T, D_m)``; :class:`FeatureSequenceDataset`). Two classifiers, any
    mmaction2 head taking ``(N * T, D, 1, 1)`` with ``num_segs=T``
    (``TSNHead``: linear with average consensus; ``TRNHead``;
    :class:`NetVLADHead`; :class:`NeXtVLADHead`), score the appearance
    stream and the motion stream; their class probabilities (softmax, or
    sigmoid for a ``multi_class`` head) are averaged with
    ``fusion_weights``. The motion stream is either the real motion
    features (``motion_input='real'``, the two-stream upper bound) or the
    hallucination of ``hallu_head`` (:class:`MoNetHead`, or one of its
    ablation units) from the appearance features, which needs no motion
    features at test time.

    The paper's two stages are two configs: (1) MoNet learns to
    hallucinate (``hallu_head`` trained with :class:`MoNetLoss`, whose
    probability term uses the real-motion classifier; both classifiers
    loaded from the real two-stream model with ``stream_ckpts`` and
    ``frozen``); (2) the motion classifier is fine-tuned on the
    hallucinated features (``hallu_head`` loaded and frozen).

    Args:
        appearance_head (dict, optional): Classifier of the appearance
            stream.
        motion_head (dict, optional): Classifier of the motion stream.
        classifier (dict, optional): One classifier config for the streams
            without their own head, built with ``in_channels`` from
            ``stream_channels``: the configs of a classifier comparison
            change this key only.
        stream_channels (dict, optional): Stream (``'appearance'``,
            ``'motion'``) -> feature size, for ``classifier``; a stream not
            named gets no classifier from it.
        hallu_head (dict, optional): Hallucinates the motion stream from
            the appearance stream: ``(N * T, D_a)`` -> ``(N * T, D_m)``,
            with a ``loss(hallu, target, num_segs)``. Its
            ``loss_hallu.classifier`` may be the string ``'motion_head'``:
            :class:`MoNetLoss` then builds its frozen classifier from this
            model's motion head config.
        motion_input (str): ``'real'`` or ``'hallucinated'``.
        fusion_weights (tuple[float, float]): Weights of the appearance and
            motion streams' probabilities.
        frozen (Sequence[str]): Parts not trained (no gradients, eval
            mode, no loss): any of ``'appearance_head'``,
            ``'motion_head'``, ``'hallu_head'``.
        stream_ckpts (dict, optional): Part name -> checkpoint of a
            :class:`FeatureSequenceRecognizer` holding that part under the
            same name; loaded in :meth:`init_weights`.
        data_preprocessor (dict, optional): Default
            :class:`FeatureSequenceDataPreprocessor`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 appearance_head: OptConfigType = None,
                 motion_head: OptConfigType = None,
                 classifier: OptConfigType = None,
                 stream_channels: Optional[Dict[str, int]] = None,
                 hallu_head: OptConfigType = None,
                 motion_input: str = 'real',
                 fusion_weights: Tuple[float, float] = (1.0, 1.0),
                 frozen: Sequence[str] = (),
                 stream_ckpts: Optional[Dict[str, str]] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='FeatureSequenceDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name = type(self).__name__
        appearance_head, motion_head = self._classifiers(
            appearance_head, motion_head, classifier, stream_channels)
        hallu_head = self._hallu_head(hallu_head, motion_head)
        if motion_input not in MOTION_INPUTS:
            raise ValueError(f'{name}: motion_input={motion_input!r}; '
                             f'expected one of {MOTION_INPUTS}')
        if appearance_head is None and motion_head is None:
            raise ValueError(f'{name}: give appearance_head, motion_head or '
                             'both')
        if (motion_input == 'hallucinated') != (hallu_head is not None):
            raise ValueError(
                f'{name}: motion_input={motion_input!r} with hallu_head='
                f"{'set' if hallu_head else 'None'}; a hallucinated motion "
                'stream needs a hallu_head, and a hallu_head is only used '
                "with motion_input='hallucinated'")
        self.motion_input = motion_input
        self.fusion_weights = tuple(float(w) for w in fusion_weights)
        for part, cfg in zip(_PARTS,
                             (appearance_head, motion_head, hallu_head)):
            setattr(self, part, MODELS.build(cfg) if cfg else None)
        self.frozen = tuple(frozen)
        self.stream_ckpts = dict(stream_ckpts or {})
        for part in (*self.frozen, *self.stream_ckpts):
            if part not in _PARTS or getattr(self, part) is None:
                raise ValueError(
                    f'{name}: {part!r} in frozen / stream_ckpts is not a part '
                    'of this model (it has '
                    f'{list(self.parts)})')
        for part in self.frozen:
            for param in getattr(self, part).parameters():
                param.requires_grad = False

    @classmethod
    def _classifiers(cls, appearance_head, motion_head, classifier,
                     stream_channels) -> Tuple:
        heads = dict(appearance=appearance_head, motion=motion_head)
        stream_channels = dict(stream_channels or {})
        unknown = set(stream_channels) - set(heads)
        if unknown:
            raise ValueError(f'{cls.__name__}: stream_channels names '
                             f'{sorted(unknown)}; the streams are '
                             f'{sorted(heads)}')
        if classifier is None:
            if stream_channels:
                raise ValueError(f'{cls.__name__}: stream_channels without '
                                 'a classifier config')
            return heads['appearance'], heads['motion']
        for stream, channels in stream_channels.items():
            if heads[stream] is not None:
                raise ValueError(
                    f'{cls.__name__}: the {stream} stream has both its '
                    f'{stream}_head and a classifier (stream_channels.'
                    f'{stream}); give one')
            heads[stream] = dict(classifier, in_channels=channels)
        return heads['appearance'], heads['motion']

    @classmethod
    def _hallu_head(cls, hallu_head, motion_head) -> OptConfigType:
        loss = (hallu_head or {}).get('loss_hallu') or {}
        if loss.get('classifier') != 'motion_head':
            return hallu_head
        if motion_head is None:
            raise ValueError(
                f"{cls.__name__}: hallu_head.loss_hallu.classifier="
                "'motion_head' but the model has no motion head")
        hallu_head = copy.deepcopy(dict(hallu_head))
        hallu_head['loss_hallu'] = dict(loss, classifier=motion_head)
        return hallu_head

    # ---------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Initialise, then load the parts named in ``stream_ckpts``."""
        super().init_weights()
        for part, filename in self.stream_ckpts.items():
            load_checkpoint_into(
                getattr(self, part),
                filename,
                prefixes={f'{part}.': ''},
                key_name=f'stream_ckpts.{part}',
                what=f'the {part} of a FeatureSequenceRecognizer checkpoint',
                allow_unexpected=True)

    def train(self, mode: bool = True) -> 'FeatureSequenceRecognizer':
        """Set train mode; frozen parts stay in eval mode."""
        super().train(mode)
        for part in self.frozen:
            getattr(self, part).eval()
        return self

    # ---------------------------------------------------------- forward
    def streams(self, inputs: Dict[str, torch.Tensor]
                ) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """Each classifier's input and the hallucination.

        Args:
            inputs (dict): ``appearance`` ``(N, T, D_a)`` and, for real
                motion (or a hallucination loss), ``motion`` ``(N, T,
                D_m)``.

        Returns:
            tuple: ``{part: (N * T, D, 1, 1)}`` for the classifiers, and the
            hallucination ``(N * T, D_m)`` (None without ``hallu_head``).
        """
        need = ['appearance'] if (self.appearance_head is not None
                                  or self.hallu_head is not None) else []
        if self.motion_input == 'real' and self.motion_head is not None:
            need.append('motion')
        missing = [k for k in need if k not in inputs]
        if missing:
            raise KeyError(
                f'{type(self).__name__}: the batch has no {missing} '
                f'features (it has {sorted(inputs)}); list them in the '
                "dataset's streams and PackActionInputs' collect_keys")
        steps = _num_steps(inputs)
        # [N, T, D] -> [N * T, D]
        flat = {k: v.reshape(-1, v.shape[-1]) for k, v in inputs.items()}
        hallu = None
        if self.hallu_head is not None:
            if 'hallu_head' in self.frozen:
                with torch.no_grad():
                    hallu = self.hallu_head(flat['appearance'], steps)
            else:
                hallu = self.hallu_head(flat['appearance'], steps)
        feats = {}
        if self.appearance_head is not None:
            feats['appearance_head'] = flat['appearance']
        if self.motion_head is not None:
            feats['motion_head'] = hallu if hallu is not None \
                else flat['motion']
        # [N * T, D] -> [N * T, D, 1, 1], the input of mmaction2's 2D heads
        return {k: v[..., None, None] for k, v in feats.items()}, hallu

    def forward_head(self, feats: Dict[str, torch.Tensor],
                     steps: int) -> Dict[str, torch.Tensor]:
        """Each classifier's ``(N, num_classes)`` scores."""
        return {
            part: getattr(self, part)(x, num_segs=steps)
            for part, x in feats.items()
        }

    def predict_scores(self, inputs: Dict[str, torch.Tensor]
                       ) -> torch.Tensor:
        """Fused class probabilities ``(N, num_classes)``: the one
        prediction path (:meth:`predict` calls it)."""
        feats, _ = self.streams(inputs)
        steps = _num_steps(inputs)
        scores = self.forward_head(feats, steps)
        weights = dict(appearance_head=self.fusion_weights[0],
                       motion_head=self.fusion_weights[1])
        total = 0.0
        fused = None
        for part, score in scores.items():
            head = getattr(self, part)
            probs = score.sigmoid() if getattr(head, 'multi_class', False) \
                else score.softmax(dim=-1)
            fused = probs * weights[part] if fused is None \
                else fused + probs * weights[part]
            total += weights[part]
        return fused / total

    def predict(self, inputs: Dict[str, torch.Tensor],
                data_samples: SampleList) -> SampleList:
        """Write the fused scores and the top class into the samples."""
        scores = self.predict_scores(inputs)
        for sample, score in zip(data_samples, scores):
            set_pred_score(sample, score)
            set_pred_label(sample, score.argmax(dim=-1, keepdim=True))
        return data_samples

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """The hallucination loss (``loss_hallu``, ...) against the real
        motion features, and each trained classifier's loss, suffixed with
        its stream (``loss_cls_appearance``, ``loss_cls_motion``)."""
        feats, hallu = self.streams(inputs)
        steps = _num_steps(inputs)
        losses = {}
        if hallu is not None and 'hallu_head' not in self.frozen:
            if 'motion' not in inputs:
                raise KeyError(
                    f'{type(self).__name__}: training hallu_head needs the '
                    "real motion features: add the 'motion' stream to the "
                    'training set')
            motion = inputs['motion']
            losses.update(
                self.hallu_head.loss(hallu,
                                     motion.reshape(-1, motion.shape[-1]),
                                     steps))
        for part, x in feats.items():
            if part in self.frozen:
                continue
            stream = part[:-len('_head')]
            # Unlabelled videos (label -1) train the hallucination only.
            head_losses = labelled_head_loss(
                getattr(self, part), x, data_samples,
                labelled_samples(data_samples), num_segs=steps)
            losses.update(
                {f'{k}_{stream}': v
                 for k, v in head_losses.items()})
        if not losses:
            raise ValueError(f'{type(self).__name__}: every part is frozen; '
                             'nothing to train')
        return losses

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: SampleList = None,
                mode: str = 'tensor'):
        """``'loss'``, ``'predict'`` or ``'tensor'`` (the fused scores)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predict_scores(inputs)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    @property
    def parts(self) -> Dict[str, nn.Module]:
        """The parts the model has, by name."""
        return {
            p: getattr(self, p)
            for p in _PARTS if getattr(self, p) is not None
        }
