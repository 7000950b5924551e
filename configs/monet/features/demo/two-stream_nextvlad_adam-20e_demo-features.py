# two-stream_linear_adam-20e_demo-features.py with the NeXtVLAD classifier.
_base_ = [
    './two-stream_linear_adam-20e_demo-features.py',
    '../../../_base_/models/monet-features_demo-classifiers.py'
]
model = dict(classifier={{_base_.nextvlad_classifier}})
