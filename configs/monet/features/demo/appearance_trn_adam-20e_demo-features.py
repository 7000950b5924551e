# appearance_linear_adam-20e_demo-features.py with the TRN classifier.
_base_ = [
    './appearance_linear_adam-20e_demo-features.py',
    '../../../_base_/models/monet-features_demo-classifiers.py'
]
model = dict(classifier={{_base_.trn_classifier}})
