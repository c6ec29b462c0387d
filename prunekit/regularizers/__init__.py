"""Sparsity-inducing regularizers (a registry: ``prunekit list regularizers``).

Trained with one of these, whole coupled channel groups shrink towards zero before they are cut:
``group_lasso`` (Wen et al. 2016 / DepGraph), ``slimming`` (L1 on BatchNorm scales, Liu et al.
2017) and ``greg`` (a growing penalty on the channels chosen for removal, Wang et al. 2021).
"""

from prunekit.regularizers.base import REGULARIZERS, Regularizer, check_strength, get_regularizer
from prunekit.regularizers.config import SparsifyConfig
from prunekit.regularizers.greg import GrowingRegularizer, greg_strength
from prunekit.regularizers.group_lasso import GroupLasso, group_lasso_penalty
from prunekit.regularizers.slices import GroupSlices, Slice, channel_sq_norms, group_slices
from prunekit.regularizers.slimming import Slimming, bn_l1_penalty

__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "get_regularizer",
    "check_strength",
    "SparsifyConfig",
    "GroupLasso",
    "group_lasso_penalty",
    "Slimming",
    "bn_l1_penalty",
    "GrowingRegularizer",
    "greg_strength",
    "Slice",
    "GroupSlices",
    "group_slices",
    "channel_sq_norms",
]
