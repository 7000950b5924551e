"""The user API in mmaction2's sense: the few calls a user's own script
makes. Each lives in the subsystem named after it; this module only
gathers them (``from hallucinet_plugin.apis import inference``)."""
from ..datasets.unlabelled import use_unlabelled
from ..deploy.deploy_model import build_deploy_model
from ..deploy.inference import Predictor, inference
from ..deploy.onnx_export import export_onnx
from ..feature_bank.extraction import extract_teacher_features
from ..feature_bank.switch import use_teacher_bank

__all__ = [
    'Predictor', 'build_deploy_model', 'export_onnx',
    'extract_teacher_features', 'inference', 'use_teacher_bank',
    'use_unlabelled'
]
