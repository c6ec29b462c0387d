"""prunekit: structured pruning that removes channels for real.

>>> graph = prunekit.DependencyGraph(model, x)
>>> report = prunekit.prune_(model, x, sparsity=0.5, criterion="l1")
"""

__version__ = "0.1.0"

from prunekit import rules as _rules  # noqa: E402,F401  (registers the built-in layer rules)
from prunekit.config import load_recipe, recipe_from_options  # noqa: E402
from prunekit.criteria import CRITERIA, Criterion, get_criterion  # noqa: E402
from prunekit.equivalence import EquivalenceResult, assert_equivalent, check_equivalence  # noqa: E402
from prunekit.graph import DependencyGraph, Group, Member  # noqa: E402
from prunekit.masks import ChannelMasks, mask_  # noqa: E402
from prunekit.metrics import count_macs, count_params  # noqa: E402
from prunekit.prune import prune, prune_  # noqa: E402
from prunekit.report import PruneReport  # noqa: E402
from prunekit.rules import LayerRule, mark_leaf, register_rule, unmark_leaf, unregister_rule  # noqa: E402
from prunekit.serialization import load, save  # noqa: E402

__all__ = [
    "__version__",
    "DependencyGraph",
    "Group",
    "Member",
    "prune_",
    "prune",
    "PruneReport",
    "mask_",
    "ChannelMasks",
    "check_equivalence",
    "assert_equivalent",
    "EquivalenceResult",
    "count_params",
    "count_macs",
    "Criterion",
    "CRITERIA",
    "get_criterion",
    "LayerRule",
    "register_rule",
    "unregister_rule",
    "mark_leaf",
    "unmark_leaf",
    "save",
    "load",
    "load_recipe",
    "recipe_from_options",
]
