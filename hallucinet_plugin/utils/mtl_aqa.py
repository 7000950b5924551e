"""MTL-AQA's label space, shared by its dataset, the dive head and the
dive metrics (components that do not import each other)."""

# Class counts of the released dive-property labels (Parmar & Morris, CVPR
# 2019; see datasets/mtl_aqa_dataset.py).
MTL_AQA_PROPERTIES = dict(
    position=3, armstand=2, rotation_type=4, ss_no=10, tw_no=8)
