"""prunekit: structured pruning that removes channels for real.

>>> graph = prunekit.DependencyGraph(model, x)
>>> report = prunekit.prune_(model, x, sparsity=0.5, criterion="l1")

``import prunekit`` stays light (no torchvision, yaml, tqdm, matplotlib or onnx): the names that
need them (``load_recipe``, ``recipe_from_options``, ``save``, ``load``) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prunekit import rules as _rules  # noqa: E402,F401  (registers the built-in layer rules)
from prunekit.criteria import CRITERIA, Criterion, get_criterion  # noqa: E402
from prunekit.engine import Override, PruneOptions  # noqa: E402
from prunekit.equivalence import EquivalenceResult, assert_equivalent, check_equivalence  # noqa: E402
from prunekit.fold import fold_batchnorm, fold_constants  # noqa: E402
from prunekit.graph import DependencyGraph, Group, Member  # noqa: E402
from prunekit.masks import ChannelMasks, mask_  # noqa: E402
from prunekit.metrics import count_macs, count_params  # noqa: E402
from prunekit.prune import prune, prune_  # noqa: E402
from prunekit.report import PruneReport  # noqa: E402
from prunekit.rules import LayerRule, mark_leaf, register_rule, unmark_leaf, unregister_rule  # noqa: E402

__version__ = "0.1.0"

if TYPE_CHECKING:
    from prunekit.recipes import load_recipe, recipe_from_options
    from prunekit.serialization import load, save

# name -> the module that defines it, imported on first use (they pull in yaml and torchvision)
_LAZY = {
    "load_recipe": "prunekit.recipes",
    "recipe_from_options": "prunekit.recipes",
    "save": "prunekit.serialization",
    "load": "prunekit.serialization",
}

__all__ = [
    "__version__",
    "DependencyGraph",
    "Group",
    "Member",
    "PruneOptions",
    "Override",
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
    "fold_batchnorm",
    "fold_constants",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prunekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
