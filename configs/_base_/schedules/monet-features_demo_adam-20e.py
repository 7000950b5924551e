# MoNet's schedule shape (rate divided by 10 twice, gradients clipped at
# norm 1.0) at half length for the feature-level demo's 240 videos: 20
# epochs, steps after 8 and 15. The rate is 3e-3, not the paper's 2e-4:
# chosen on the real two-stream baseline alone (linear classifier, seed 0,
# 40 epochs of 16): 2e-4 left its motion classifier undertrained (57.9%
# top-1), 1e-3 gave 89.2%, 3e-3 95.4%; the appearance stream alone was
# 18-19% at all three. Batches of 32 (see the data config).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=3e-3), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[8, 15], gamma=0.1)
]
