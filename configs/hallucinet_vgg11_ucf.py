# Short name of the paper's main set-up:
# hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py.
_base_ = ['./hallucinet_vgg11-bn_resnext101_adam-30e_ucf101-static.py']
