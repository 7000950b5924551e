# The appearance stream alone (NeXtVLAD), the baseline of MoNet's tables.
_base_ = ['./two-stream_nextvlad_adam-40e_kinetics400-i3d-features.py']
model = dict(
    stream_channels=dict(_delete_=True,
                         appearance={{_base_.appearance_dim}}))
