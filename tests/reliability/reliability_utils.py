"""Configs and subprocess runs shared by the reliability tests."""
import importlib.util
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
DEMO = 'configs/demo/hallucinet_resnet10t_r3d-tiny_adam-10e_demo.py'
# The plugin modules these tests exercise, imported explicitly so that the
# subprocesses register them whatever the package's __init__ imports, and
# the tests' own observing hooks.
IMPORTS = [
    'hallucinet_plugin', 'hallucinet_plugin.engine',
    'hallucinet_plugin.datasets.hallu_video_dataset',
    'hallucinet_plugin.datasets.transforms.hallu_decord_init', 'probe_hooks'
]
# One thread per process: the same float results in every run (reductions
# split over threads differ in the last bits) and no oversubscription.
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join([REPO, HERE, os.environ.get('PYTHONPATH',
                                                           '')]),
    OMP_NUM_THREADS='1',
    MKL_NUM_THREADS='1')


def write_config(path: str,
                 base: str,
                 dataset: Dict,
                 batch_size: int,
                 epochs: int,
                 workers: int = 0,
                 hooks: Sequence[Dict] = (),
                 options: Optional[Dict] = None) -> str:
    """A repo config on a test dataset, dumped to ``path``.

    Every split reads ``dataset`` through ``HalluVideoDataset``; no
    validation during training; a log line per iteration; gloo for
    ``--launcher pytorch``; ``hooks`` are appended to ``custom_hooks``.
    """
    cfg = Config.fromfile(osp.join(REPO, base))
    opts = {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs + 1,
        'default_hooks.logger.interval': 1,
        'env_cfg.dist_cfg.backend': 'gloo',
    }
    if cfg.model.get('teacher') is not None:
        # A random teacher: no trained teacher checkpoint in the tests.
        opts['model.teacher.checkpoint'] = None
    for split in ('train', 'val', 'test'):
        prefix = f'{split}_dataloader.'
        opts.update({
            prefix + 'dataset.type': 'HalluVideoDataset',
            prefix + 'dataset.ann_file': dataset['ann_file'],
            prefix + 'dataset.data_prefix.video': dataset['video_dir'],
            prefix + 'batch_size': batch_size,
            prefix + 'num_workers': workers,
            prefix + 'persistent_workers': workers > 0,
        })
    opts.update(options or {})
    cfg.merge_from_dict(opts)
    cfg.custom_imports = dict(imports=IMPORTS, allow_failed_imports=False)
    custom = list(cfg.get('custom_hooks', None) or [])
    present = {hook['type'] for hook in custom}
    cfg.custom_hooks = custom + [h for h in hooks if h['type'] not in present]
    cfg.dump(path)
    return path


def extract_bank(config: str, out: str) -> None:
    """tools/extract_teacher_features.py, its main() run in this process."""
    spec = importlib.util.spec_from_file_location(
        'extract_teacher_features',
        osp.join(REPO, 'tools', 'extract_teacher_features.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([
        config, '--out', out, '--dtype', 'float32', '--workers', '0',
        '--device', 'cpu', '--no-progress'
    ])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_cmd(tool: str, *args: str, nproc: int = 1) -> List[str]:
    """``python tools/<tool> args``, or its torchrun (``--launcher
    pytorch``, as tools/dist_train.sh and tools/dist_test.sh) with
    ``nproc`` processes."""
    if nproc == 1:
        return [sys.executable, f'tools/{tool}', *args]
    return [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
        str(nproc), '--master_port',
        str(free_port()), f'tools/{tool}', *args, '--launcher', 'pytorch'
    ]


def run(cmd: List[str],
        timeout: int = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')
    return proc


def run_until(cmd: List[str], marker: str, timeout: int = 300) -> str:
    """Start ``cmd``, SIGKILL it as soon as ``marker`` exists; returns its
    output."""
    with open(marker + '.log', 'w') as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not osp.exists(marker):
                if proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{marker} never appeared')
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(marker + '.log') as log:
        output = log.read()
    assert proc.returncode == -signal.SIGKILL, \
        f'not killed ({proc.returncode}):\n{output[-5000:]}'
    return output


def read_records(out_dir: str, world_size: int) -> List[Dict]:
    records = []
    for rank in range(world_size):
        with open(osp.join(out_dir, f'rank{rank}.json')) as f:
            records.append(json.load(f))
    return records


def load_state(path: str) -> Dict[str, torch.Tensor]:
    import hallucinet_plugin  # noqa: F401  (weights_only allowlist)
    return torch.load(path, map_location='cpu')['state_dict']
