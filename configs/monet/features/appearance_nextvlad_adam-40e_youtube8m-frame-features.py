# The appearance stream alone (NeXtVLAD), the baseline of MoNet's tables.
_base_ = ['./two-stream_nextvlad_adam-40e_youtube8m-frame-features.py']
model = dict(
    stream_channels=dict(_delete_=True,
                         appearance={{_base_.appearance_dim}}))
