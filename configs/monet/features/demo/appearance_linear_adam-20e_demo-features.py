# The appearance stream alone: the baseline that hallucination should beat.
_base_ = ['./two-stream_linear_adam-20e_demo-features.py']
model = dict(
    stream_channels=dict(_delete_=True,
                         appearance={{_base_.appearance_dim}}))
