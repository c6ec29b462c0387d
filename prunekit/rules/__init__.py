"""Layer rules: the table of layer types prunekit knows, which users can extend.

Register a rule for your own layer with :func:`register_rule`; mark a block the tracer must not
enter with :func:`mark_leaf` (its channels are then kept, unless it has a rule).
"""

from prunekit.rules import builtin as _builtin  # noqa: F401  (registers the built-in rules)
from prunekit.rules.base import (
    LayerRule,
    get_rule,
    mark_leaf,
    register_rule,
    register_rule_by_name,
    registered_rules,
    unmark_leaf,
    unregister_rule,
)
from prunekit.rules.conv import ConvRule
from prunekit.rules.linear import EmbeddingRule, LinearRule
from prunekit.rules.norm import GroupNormRule, LayerNormRule, PerChannelRule
from prunekit.rules.shape import ElementwiseRule, OpaqueRule, SpatialRule

__all__ = [
    "LayerRule",
    "register_rule",
    "register_rule_by_name",
    "unregister_rule",
    "get_rule",
    "mark_leaf",
    "unmark_leaf",
    "registered_rules",
    "ConvRule",
    "LinearRule",
    "EmbeddingRule",
    "PerChannelRule",
    "LayerNormRule",
    "GroupNormRule",
    "ElementwiseRule",
    "SpatialRule",
    "OpaqueRule",
]
