train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-5)
]
randomness = dict(seed=0)
