"""What op and layer rules see while the model is interpreted: the :class:`TraceContext`.

A rule (see :class:`prunekit.rules.LayerRule` and :func:`prunekit.graph.ops.register_op_rule`)
receives the context, the call's real values and their channel *annotations*, and returns the
annotation of the result. It reports what it learns through the context:

* ``ctx.new_space(key, n, label)``: fresh atoms for ``n`` new channels (a layer's outputs);
* ``ctx.member(module, role, atoms)``: the layer's ``role`` ("in"/"out") holds these atoms;
* ``ctx.union(a, b, why)``: ``a[i]`` and ``b[i]`` must be removed together (a residual add);
* ``ctx.lock(ann, reason)``: these channels must be kept;
* ``ctx.partition(blocks, reason)``: every block must keep the same number (grouped conv);
* ``ctx.inexact(atoms, reason)``: removing them differs from zeroing them (LayerNorm).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import torch.fx as fx
import torch.nn as nn

from prunekit.channels.atoms import AtomTable, Axis, ParamSource, SizeOf

__all__ = ["TraceContext", "MemberKey", "Ann", "iter_axes", "channel_atoms", "layer_label", "node_label"]

#: An annotation: the channel layout of a value (:class:`Axis`), a parameter view
#: (:class:`ParamSource`), a number computed from channel counts (:class:`SizeOf`), a
#: tuple/list/dict of annotations for container-valued ops (split, chunk, ``x.shape``...), or
#: None for "no channels prunekit can follow".
Ann: TypeAlias = Any


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


def node_label(node: fx.Node) -> tuple[str, str]:
    """``(op name, owning module)`` of a graph node, for messages."""
    stack = node.meta.get("nn_module_stack") or {}
    last = list(stack.values())[-1] if stack else ""
    module = last[0] if isinstance(last, tuple) else str(last)
    if node.op == "call_module":
        return str(node.target), str(node.target)
    target = node.target
    op = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    return str(op), module


@dataclass
class TraceContext:
    """Shared state of one dependency analysis (several traced graphs may share one)."""

    atoms: AtomTable = field(default_factory=AtomTable)
    members: dict[MemberKey, np.ndarray] = field(default_factory=dict)
    node: fx.Node | None = None
    num_nodes: int = 0
    model: nn.Module | None = None  # the user's model (ATen rules look layers up by weight name)
    notes: list[str] = field(default_factory=list)  # parameters used by ops without a rule
    backend: str = "fx"
    # every coupling op: (atoms it ties, kind such as "add", where() of its node), for messages
    sites: list[tuple[np.ndarray, str, str]] = field(default_factory=list)
    # reshape dims sized by a layer attribute: (channels along the dim, the layer role, reason)
    attribute_links: list[tuple[np.ndarray, MemberKey, str]] = field(default_factory=list)
    # the graph nodes at which each layer read its input channels (whether the model's output
    # still depends on its input once some layers' inputs are emptied: prunekit.graph.branches)
    input_nodes: dict[str, list[fx.Node]] = field(default_factory=dict)

    # ---- where we are, for messages
    def where(self, node: fx.Node | None = None) -> str:
        """``'op' in 'module'`` for the node being interpreted (or ``node``)."""
        node = node or self.node
        if node is None:
            return "?"
        op, module = node_label(node)
        if node.op == "call_module":
            return f"'{op}'"
        return f"'{op}' in '{module or '<model>'}'"

    # ---- atoms
    def new_space(self, key: object, size: int, label: str) -> np.ndarray:
        """The atoms of the new channels ``key`` (created once; a reused layer gets the same)."""
        return self.atoms.new_space(key, size, label)

    def opaque(self, size: int, reason: str) -> np.ndarray:
        """Fresh locked atoms for channels prunekit cannot slice (a constant, the model input...)."""
        atoms = self.atoms.new_space(object(), size, "opaque")
        self.atoms.lock(atoms, reason)
        return atoms

    def union(self, a: np.ndarray, b: np.ndarray, why: str) -> None:
        """Couples ``a[i]`` with ``b[i]``: they are removed together."""
        self.atoms.union(a, b, why)
        if a.size:
            self.sites.append((a.reshape(-1), why, self.where()))

    def lock(self, ann: Ann, reason: str) -> None:
        """Locks every channel that ``ann`` (possibly nested) carries."""
        for axis in iter_axes(ann):
            self.atoms.lock(axis.flat, reason)

    def inexact(self, atoms: np.ndarray, reason: str) -> None:
        self.atoms.mark_inexact(atoms.reshape(-1), reason)

    def partition(self, blocks: list[np.ndarray] | np.ndarray, reason: str) -> None:
        """Each block must keep the same number of positions. ``blocks``: a list of atom arrays, or
        one array whose first axis runs over equal blocks (``atoms.reshape(groups, -1)``: the
        rows are what ``np.split(atoms, groups)`` gives, flattened, without a list of arrays).
        Blocks of one length are recorded as the rows of one array either way."""
        if isinstance(blocks, np.ndarray):
            rows: list[np.ndarray] | np.ndarray = blocks.reshape(len(blocks), -1)
        else:
            rows = [b.reshape(-1) for b in blocks]
            if rows and len({len(b) for b in rows}) == 1:
                rows = np.stack(rows)
        self.atoms.partition(rows, reason)

    def tag(self, atoms: np.ndarray, coupling: str) -> None:
        self.atoms.tag(atoms, coupling)

    def link_size(self, held: np.ndarray, source: SizeOf, reason: str) -> None:
        """A dim holding ``held`` channels gets its size from ``source`` (see AtomTable.link_size)."""
        self.atoms.link_size(held, source.atoms, reason)

    def link_attribute(self, held: np.ndarray, module: str, role: str, reason: str) -> None:
        """A dim holding ``held`` (one atom per position along it; empty if it holds no channels)
        has its size read from the attribute that counts ``module``'s ``role`` channels, which
        the surgery updates. Checked after tracing: the dim must hold exactly those channels,
        each once; otherwise both are locked (see ``prunekit.graph.groups``)."""
        self.attribute_links.append((held.reshape(-1), MemberKey(module, role), reason))

    # ---- members
    def member(self, module: str, role: str, atoms: np.ndarray) -> None:
        """Records that ``module``'s ``role`` positions hold ``atoms``."""
        self._add(MemberKey(module, role), atoms)
        if role == "in" and self.node is not None:
            self.input_nodes.setdefault(module, []).append(self.node)

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
            reason = f"{key.module} is called with {old.size} and {atoms.size} channels"
            self.atoms.lock(old, reason)
            self.atoms.lock(atoms, reason)


def iter_axes(ann: Ann) -> Iterator[Axis]:
    """Yields every Axis inside a (nested) annotation."""
    if isinstance(ann, Axis):
        yield ann
    elif isinstance(ann, (tuple, list)):
        for a in ann:
            yield from iter_axes(a)
    elif isinstance(ann, dict):
        for a in ann.values():
            yield from iter_axes(a)


def layer_label(name: str, module: object) -> str:
    """``Conv2d 'layer1.0.conv1'``, for messages."""
    return f"{type(module).__name__} '{name}'"


def channel_atoms(ctx: TraceContext, ann: Ann, cdim: int, what: str) -> np.ndarray | None:
    """The atoms on dim ``cdim`` of a layer input, or None when that dim carries no channels.

    Channels that sit only on other dims are locked: the layer mixes or reshapes that dim in a
    way the rule does not describe. Channels on ``cdim`` that also vary along other dims are
    coupled along them: the layer reads channel ``c`` at every position of slice ``c``.
    """
    if not isinstance(ann, Axis):
        return None
    if ann.dims == (cdim,):
        return ann.atoms
    if cdim in ann.dims:
        # channels also vary along the positions the layer reads each channel at (a Linear's
        # output viewed as (C, 4, 4) feeding a conv): channel c is every position of slice c,
        # removed together
        k = ann.dims.index(cdim)
        columns = np.moveaxis(ann.atoms, k, 0).reshape(ann.atoms.shape[k], -1)
        for col in range(1, columns.shape[1]):
            ctx.union(columns[:, 0], columns[:, col], "spread")
        return columns[:, 0]
    ctx.lock(ann, f"{what} reads channels laid out on dims {ann.dims}, not on its channel dim {cdim}")
    return None
