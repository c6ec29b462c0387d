"""A prune plan: which positions every member keeps, derived from the removed channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from prunekit.errors import SurgeryError
from prunekit.graph.dependency import DependencyGraph

__all__ = ["PrunePlan", "make_plan", "plan_from_kept", "removed_mask"]


@dataclass
class PrunePlan:
    """What to cut.

    Attributes:
        removed: group id -> removed channel indices (within the group).
        module_keep: module name -> role ("in"/"out") -> kept positions, only where it shrinks.
        param_keep: tensor qualified name -> dim -> kept positions, for bare parameters.
        sizes: module name -> role -> size before pruning.
    """

    removed: dict[int, np.ndarray]
    module_keep: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    param_keep: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.module_keep and not self.param_keep


def removed_mask(removed_roots: np.ndarray, root_arrays: Iterable[np.ndarray]) -> np.ndarray:
    """A boolean table over root ids, True for the removed ones: one lookup per position instead
    of an ``isin`` (a sort) per member, so planning stays linear in the model's depth."""
    top = max((int(r.max()) for r in root_arrays if r.size), default=-1)
    top = max(top, int(removed_roots.max()) if removed_roots.size else -1)
    gone = np.zeros(top + 1, dtype=bool)
    gone[removed_roots] = True
    return gone


def make_plan(graph: DependencyGraph, removed: dict[int, np.ndarray], *, emptied: Iterable[int] = ()) -> PrunePlan:
    """Maps removed group channels to the kept positions of every member.

    A member may lose all its channels only when they all belong to groups in ``emptied``
    (removable branches, whose layers surgery replaces, :mod:`prunekit.surgery.standins`).
    """
    plan = PrunePlan(removed={k: v for k, v in removed.items() if len(v)})
    if not plan.removed:
        return plan
    removed_roots = np.concatenate([graph.groups[gid].roots[ch] for gid, ch in plan.removed.items()])
    gone = removed_mask(removed_roots, graph.member_roots().values())
    whole = [graph.groups[gid].roots for gid in emptied if len(plan.removed.get(gid, ())) == graph.groups[gid].size]
    may_empty = removed_mask(np.concatenate(whole), graph.member_roots().values()) if whole else None
    for key, roots in graph.member_roots().items():
        keep = ~gone[roots]
        if key.role != "param":
            plan.sizes.setdefault(key.module, {})[key.role] = len(roots)
        if keep.all():
            continue
        if not keep.any() and (may_empty is None or not may_empty[roots].all()):
            raise SurgeryError(
                f"'{key.module}' would lose all its {key.role} channels; prune less or ignore it",
                module=key.module,
            )
        idx = np.nonzero(keep)[0]
        if key.role == "param":
            plan.param_keep.setdefault(key.tensor, {})[key.dim] = idx
        else:
            plan.module_keep.setdefault(key.module, {})[key.role] = idx
    return plan


def plan_from_kept(
    module_keep: dict[str, dict[str, list[int]]], param_keep: dict[str, dict[int, list[int]]] | None = None
) -> PrunePlan:
    """A plan from kept positions given as data (a saved cut, a broadcast or replayed decision)."""
    plan = PrunePlan(removed={})
    plan.module_keep = {
        n: {r: np.asarray(i, dtype=np.int64) for r, i in roles.items()} for n, roles in module_keep.items()
    }
    plan.param_keep = {
        t: {int(d): np.asarray(i, dtype=np.int64) for d, i in dims.items()} for t, dims in (param_keep or {}).items()
    }
    return plan
