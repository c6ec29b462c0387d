"""Tracing a model and deriving its coupled channel groups.

The vocabulary rules are written in is :mod:`prunekit.channels`; layer rules are
:mod:`prunekit.rules`; rules for functional ops are :mod:`prunekit.graph.ops`.
"""

from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group, Member
from prunekit.graph.ops import register_op_rule, registered_op_rules, unregister_op_rule

__all__ = ["DependencyGraph", "Group", "Member", "register_op_rule", "unregister_op_rule", "registered_op_rules"]
