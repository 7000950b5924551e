# The plugin's runtime: mmaction2's defaults plus the plugin import, so these
# configs also work with mmaction2's own tools/train.py.
custom_imports = dict(
    imports=['hallucinet_plugin'], allow_failed_imports=False)
default_scope = 'mmaction'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=1, save_best='auto', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))
# Stop at the first NaN/inf loss, naming the iteration, the terms and the
# batch's videos, before anything of that iteration is checkpointed.
custom_hooks = [dict(type='FiniteLossHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

# TensorBoard: add dict(type='TensorboardVisBackend') here, or on the command
# line: --cfg-options "visualizer.vis_backends=[dict(type='LocalVisBackend'),
# dict(type='TensorboardVisBackend')]"
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
