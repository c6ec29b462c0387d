"""Importance criteria (a registry: ``prunekit list criteria``)."""

from prunekit.criteria import magnitude as _magnitude  # noqa: F401  (registers l1, l2)
from prunekit.criteria.base import CRITERIA, Criterion, get_criterion
from prunekit.criteria.magnitude import L1Criterion, L2Criterion, l1_scores, l2_scores

__all__ = ["CRITERIA", "Criterion", "get_criterion", "L1Criterion", "L2Criterion", "l1_scores", "l2_scores"]
