"""The plugin imports through a config's custom_imports and breaks nothing
of mmaction2's own (every registered class: tests/test_registry.py)."""
import os.path as osp
import subprocess
import sys

import mmaction
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import hallucinet_plugin
from hallucinet_plugin.utils import set_gt_label

MMACTION_CONFIGS = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')


def test_version():
    assert hallucinet_plugin.__version__.count('.') == 2


def test_custom_imports_is_all_a_config_needs(tmp_path):
    """A fresh interpreter: only mmaction2's config machinery and
    custom_imports, no explicit plugin import."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "custom_imports = dict(imports=['hallucinet_plugin'], "
        'allow_failed_imports=False)\n'
        "model = dict(type='HalluciNet', backbone=dict(type='ResNet', "
        'depth=18, pretrained=None))\n')
    code = ('from mmengine.config import Config\n'
            'from mmengine.utils import import_modules_from_strings\n'
            'from mmaction.registry import MODELS\n'
            'from mmaction.utils import register_all_modules\n'
            'register_all_modules()\n'
            f'cfg = Config.fromfile({str(cfg)!r})\n'
            'import_modules_from_strings(**cfg.custom_imports)\n'
            'print(type(MODELS.build(cfg.model)).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('HalluciNet')


def test_mmaction_recognizer_still_trains_and_tests():
    """mmaction2's own TSN recipe, offline and tiny, after the import."""
    init_default_scope('mmaction')
    cfg = Config.fromfile(
        osp.join(MMACTION_CONFIGS, 'recognition', 'tsn',
                 'tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_'
                 'kinetics400-rgb.py'))
    cfg.model.backbone.pretrained = None
    cfg.model.backbone.depth = 18
    cfg.model.cls_head.in_channels = 512
    cfg.model.cls_head.num_classes = 5
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model).__name__ == 'Recognizer2D'
    from mmaction.structures import ActionDataSample
    data = dict(
        inputs=[torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[set_gt_label(ActionDataSample(), i) for i in (1, 3)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(data, wrapper)
    assert torch.isfinite(log['loss_cls'])
    model.eval()
    with torch.no_grad():
        out = model.test_step(data)
    assert len(out) == 2 and out[0].pred_scores.item.shape == (5, )
