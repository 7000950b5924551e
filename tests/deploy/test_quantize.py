"""INT8 students: static quantisation of the exported deploy path and its
comparison with the float model, on real decoded videos."""
import json

import numpy as np
import onnx
import pytest
import torch

from hallucinet_plugin.deploy.inference import Predictor
from hallucinet_plugin.deploy.onnx_export import (
    export_onnx,
    onnx_metadata,
    onnx_session,
)
from hallucinet_plugin.deploy.quantize import (
    calibration_frames,
    compare_int8,
    quantize_int8,
    read_video_list,
)
from tests.conftest import make_video_dataset, run_tool
from tests.deploy.test_export import tiny_config


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    return make_video_dataset(str(tmp_path_factory.mktemp('q8')),
                              num_videos=6, num_frames=16)


@pytest.fixture(scope='module')
def exported(videos, tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_config('resnet')
    root = tmp_path_factory.mktemp('models')
    _, out = export_onnx(cfg, 'none', root / 's.onnx', with_hallu=True)
    listed = read_video_list(videos['ann_file'], videos['video_dir'])
    int8 = quantize_int8(out, str(root / 's.int8.onnx'),
                         calibration_frames(cfg, listed[:4]))
    return cfg, out, int8, listed


def test_int8_model_is_quantised_and_keeps_the_deploy_metadata(exported):
    cfg, out, int8, listed = exported
    ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    assert onnx_metadata(onnx_session(int8)) == onnx_metadata(
        onnx_session(out))
    scores, hallu = Predictor(cfg, onnx_file=int8, with_hallu=True)(
        calibration_frames(cfg, listed[:1])[0])
    assert scores.shape == (3, ) and hallu.shape == (1, 16)
    np.testing.assert_allclose(scores.sum(), 1, atol=1e-3)


def test_compare_reports_agreement_and_the_hallucination(exported):
    cfg, out, int8, listed = exported
    report = compare_int8(cfg, out, int8, listed)
    assert report['videos'] == report['labelled'] == 6
    assert 0 <= report['top1_int8'] <= 100
    assert 0 <= report['mean_prob_diff'] <= report['max_prob_diff'] < 0.2
    assert 0.9 < report['hallu_cosine_min'] <= report['hallu_cosine_mean']
    assert report['int8_bytes'] < 0.35 * report['float_bytes']


def test_lists_name_their_line(tmp_path, videos):
    bad = tmp_path / 'bad.txt'
    bad.write_text('video_000.mp4 0\nvideo_001.mp4 x\n')
    with pytest.raises(ValueError, match=r'bad\.txt, line 2: the label'):
        read_video_list(str(bad), videos['video_dir'])
    bad.write_text('video_000.mp4 0\nnope.mp4 1\n')
    with pytest.raises(FileNotFoundError, match=r'line 2: .*nope\.mp4'):
        read_video_list(str(bad), videos['video_dir'])
    assert len(read_video_list(videos['ann_file'], videos['video_dir'],
                               limit=2)) == 2


def test_export_tool_int8(tmp_path, videos):
    cfg = tiny_config('resnet')
    cfg.val_dataloader = dict(dataset=dict(
        ann_file=videos['ann_file'],
        data_prefix=dict(video=videos['video_dir'])))
    cfg.dump(str(tmp_path / 'tiny.py'))
    out = tmp_path / 'student.onnx'
    proc = run_tool('tools/export_onnx.py', str(tmp_path / 'tiny.py'),
                    'none', '--out', str(out), '--int8', '--calib',
                    videos['ann_file'], '--calib-prefix',
                    videos['video_dir'], '--calib-videos', '3')
    assert 'calibrated on 3 videos' in proc.stdout
    # The comparison defaults to the config's validation list.
    assert f"INT8 vs float on 6 videos of {videos['ann_file']}" in \
        proc.stdout
    report = json.loads((tmp_path / 'student.int8.json').read_text())
    assert report['calib_videos'] == 3 and report['videos'] == 6
    proc = run_tool('tools/export_onnx.py', str(tmp_path / 'tiny.py'),
                    'none', '--out', str(out), '--int8', check=False)
    assert proc.returncode == 2 and '--int8 needs --calib' in proc.stderr
