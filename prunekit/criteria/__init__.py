"""Importance criteria (a registry: ``prunekit list criteria``)."""

from prunekit.criteria import magnitude as _magnitude  # noqa: F401  (registers l1, l2)
from prunekit.criteria.accuracy_drop import AccuracyDropCriterion
from prunekit.criteria.activation import (
    APoZCriterion,
    EntropyCriterion,
    MeanActivationCriterion,
    apoz_scores,
    entropy_scores,
    mean_activation_scores,
)
from prunekit.criteria.base import CRITERIA, Criterion, get_criterion
from prunekit.criteria.baseline import RandomCriterion
from prunekit.criteria.bn_scale import BNScaleCriterion, bn_scale_scores
from prunekit.criteria.data_driven import ActivationCriterion
from prunekit.criteria.fpgm import FPGMCriterion, fpgm_scores
from prunekit.criteria.group_type import GROUP_TYPES, score_group
from prunekit.criteria.lamp import LAMPCriterion, lamp_scores
from prunekit.criteria.magnitude import L1Criterion, L2Criterion, l1_scores, l2_scores
from prunekit.criteria.taylor import TaylorCriterion, taylor_activation_scores, taylor_weight_scores

__all__ = [
    "CRITERIA",
    "Criterion",
    "get_criterion",
    "L1Criterion",
    "L2Criterion",
    "l1_scores",
    "l2_scores",
    "FPGMCriterion",
    "fpgm_scores",
    "BNScaleCriterion",
    "bn_scale_scores",
    "RandomCriterion",
    "LAMPCriterion",
    "lamp_scores",
    "ActivationCriterion",
    "APoZCriterion",
    "MeanActivationCriterion",
    "EntropyCriterion",
    "apoz_scores",
    "mean_activation_scores",
    "entropy_scores",
    "TaylorCriterion",
    "taylor_activation_scores",
    "taylor_weight_scores",
    "AccuracyDropCriterion",
    "GROUP_TYPES",
    "score_group",
]
