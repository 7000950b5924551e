# The paper's AQA schedule: 20 epochs, Adam from lr 1e-4, divided by 10 every
# 5 epochs (epochs 5, 10, 15).
_base_ = ['./adam_1e-4_20e_dive.py']

param_scheduler = [
    dict(
        type='MultiStepLR',
        milestones=[5, 10, 15],
        gamma=0.1,
        by_epoch=True,
        begin=0,
        end=20)
]
