# The dive demo's students, trained from scratch on a few dives: Adam, lr
# 1e-3 with cosine decay (python -m demo dive sets the epochs). At 3e-3 the
# LSTM students learned no property in 20 epochs on 144 generated dives.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=20)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, by_epoch=True, eta_min=1e-5)
]
randomness = dict(seed=0)
