# mmaction2's packaged recipe recognition/tsm/ of this name, read from the
# installed mmaction2 (mmaction/.mim/configs). mmengine evaluates `_base_`,
# so the path is computed here: 'mmaction::' does not resolve on the pinned
# stack (docs/user_guides/your_recipe.md, "Recipes by path").
_base_ = __import__('os').path.join(
    __import__('os').path.dirname(__import__('mmaction').__file__),
    '.mim', 'configs', 'recognition', 'tsm',
    'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py')
