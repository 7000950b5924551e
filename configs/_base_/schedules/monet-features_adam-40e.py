# MoNet's schedule (Tang, Ma and Zhou, IJCAI 2019): learning rate 2e-4,
# divided by 10 every 15 epochs, gradients clipped at norm 1.0, 40 epochs.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=40, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2e-4), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=True,
        milestones=[15, 30],
        gamma=0.1)
]
