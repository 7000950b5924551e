# The paper's dive-recognition schedule: 20 epochs, Adam, lr 1e-4, constant.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=0.0), clip_grad=None)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]

# lr is for one GPU x 8 dives; --auto-scale-lr scales it to the actual batch.
auto_scale_lr = dict(enable=False, base_batch_size=8)
