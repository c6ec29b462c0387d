"""Tracing a model and deriving its coupled channel groups."""

from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group, Member

__all__ = ["DependencyGraph", "Group", "Member"]
