"""``torchrun`` on machines without a GPU."""
import logging

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log


def setup_cpu_distributed(cfg: Config) -> None:
    """Start ``torch.distributed`` for a ``--launcher pytorch`` run on CPU.

    mmengine's ``init_dist`` pins a CUDA device per rank and its default
    DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail without a
    GPU. On CPU only the process group is needed (over gloo: NCCL is
    GPU-only, so the runtime's default ``nccl`` becomes ``gloo`` with a
    warning), and DDP must wrap the CPU module with ``device_ids=None``.
    Nothing changes where CUDA is available or without a launcher.

    Args:
        cfg (Config): The merged config; ``env_cfg.dist_cfg`` and
            ``model_wrapper_cfg`` are updated in place.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or \
            torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'gloo') != 'gloo':
        print_log(
            f"env_cfg.dist_cfg.backend={dist_cfg['backend']!r} needs GPUs; "
            "no CUDA device here, so using 'gloo'",
            logger='current',
            level=logging.WARNING)
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        # torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = cfg.get('model_wrapper_cfg', None) or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
