"""What op and layer rules see while the model is interpreted: atoms, members, and helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch.fx as fx
import torch.nn as nn

from prunekit.graph._atoms import AtomTable, Axis, ParamSource

__all__ = ["TraceContext", "MemberKey", "Ann"]

# An annotation: the channel layout of a value (Axis), a parameter view, a tuple of annotations
# for tuple-valued ops (split, chunk...), or None for "no channels prunekit can follow".
Ann = object


@dataclass(frozen=True)
class MemberKey:
    """Identifies one member: a layer role, or one dim of a bare parameter.

    Attributes:
        module: qualified name of the module that owns it.
        role: "in" or "out" for layers handled by a layer rule, "param" for a bare tensor.
        tensor: for role "param", the tensor's qualified name; else "".
        dim: for role "param", the tensor dim; else -1.
    """

    module: str
    role: str
    tensor: str = ""
    dim: int = -1


@dataclass
class TraceContext:
    """Shared state of one dependency analysis."""

    atoms: AtomTable = field(default_factory=AtomTable)
    members: dict[MemberKey, np.ndarray] = field(default_factory=dict)
    node: fx.Node | None = None
    num_nodes: int = 0
    model: nn.Module | None = None  # the user's model (ATen rules look layers up by weight name)
    notes: list[str] = field(default_factory=list)  # parameters used by ops without a rule
    backend: str = "fx"
    # every coupling op: (atoms it ties, kind such as "add", where() of its node), for messages
    sites: list[tuple[np.ndarray, str, str]] = field(default_factory=list)

    # ---- where we are, for messages
    def where(self, node: fx.Node | None = None) -> str:
        node = node or self.node
        if node is None:
            return "?"
        stack = node.meta.get("nn_module_stack") or {}
        last = list(stack.values())[-1] if stack else ""
        module = last[0] if isinstance(last, tuple) else str(last)
        if node.op == "call_module":
            return f"'{node.target}'"
        op = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
        return f"'{op}' in '{module or '<model>'}'"

    # ---- atoms
    def new_space(self, key: object, size: int, label: str) -> np.ndarray:
        return self.atoms.new_space(key, size, label)

    def opaque(self, size: int, reason: str) -> np.ndarray:
        """Fresh atoms for channels prunekit cannot slice (a constant, the model input...)."""
        atoms = self.atoms.new_space(object(), size, "opaque")
        self.atoms.lock(atoms, reason)
        return atoms

    def union(self, a: np.ndarray, b: np.ndarray, why: str) -> None:
        self.atoms.union(a, b, why)
        if a.size:
            self.sites.append((a.reshape(-1), why, self.where()))

    def lock(self, ann: Ann, reason: str) -> None:
        """Locks every channel that ``ann`` (possibly nested) carries."""
        for axis in iter_axes(ann):
            self.atoms.lock(axis.flat, reason)

    def inexact(self, atoms: np.ndarray, reason: str) -> None:
        self.atoms.mark_inexact(atoms.reshape(-1), reason)

    def partition(self, blocks: list[np.ndarray], reason: str) -> None:
        self.atoms.partition([b.reshape(-1) for b in blocks], reason)

    def tag(self, atoms: np.ndarray, coupling: str) -> None:
        self.atoms.tag(atoms, coupling)

    # ---- members
    def member(self, module: str, role: str, atoms: np.ndarray) -> None:
        self._add(MemberKey(module, role), atoms)

    def param_member(self, source: ParamSource, view_dim: int, atoms: np.ndarray) -> bool:
        """Makes dim ``view_dim`` of a parameter view a member; False if it maps to no param dim."""
        pdim = source.dim_map[view_dim]
        if pdim < 0:
            return False
        owner, _, _ = source.name.rpartition(".")
        self._add(MemberKey(owner, "param", source.name, pdim), atoms)
        return True

    def _add(self, key: MemberKey, atoms: np.ndarray) -> None:
        atoms = atoms.reshape(-1)
        old = self.members.get(key)
        if old is None:
            self.members[key] = atoms
        elif old.shape == atoms.shape:
            self.atoms.union(old, atoms, "reuse")
        else:
            self.atoms.lock(old, f"{key.module} is called with {old.size} and {atoms.size} channels")
            self.atoms.lock(atoms, f"{key.module} is called with {old.size} and {atoms.size} channels")


def iter_axes(ann: Ann):
    """Yields every Axis inside a (nested) annotation."""
    if isinstance(ann, Axis):
        yield ann
    elif isinstance(ann, (tuple, list)):
        for a in ann:
            yield from iter_axes(a)
    elif isinstance(ann, dict):
        for a in ann.values():
            yield from iter_axes(a)
