"""Coupling groups: what the dependency analysis hands to criteria and surgery.

After tracing, every union-find class of atoms is one *channel*. Spaces (layer outputs) whose
atoms were coupled form one *group*; a group's members are the layer roles and parameter dims
that hold its channels, each with the positions it holds them at (offsets after a cat, H*W
repeats after a flatten, a permutation after a shuffle).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch.nn as nn

from prunekit.channels import MemberKey, TraceContext, UnionFind
from prunekit.errors import TraceError
from prunekit.rules import get_rule
from prunekit.submodules import submodule

__all__ = ["Group", "Member", "build_groups"]


@dataclass
class Member:
    """One place a group's channels live.

    Attributes:
        module: qualified name of the owning module.
        role: "out" (a layer's output channels), "in" (its input channels) or "param" (a bare
            parameter, e.g. ConvNeXt's layer scale).
        tensors: the (qualified tensor name, dim) pairs this member slices.
        positions: positions along the member's channel dim that belong to this group, in
            increasing order.
        channels: for each position, the group channel it holds.
    """

    module: str
    role: str
    tensors: list[tuple[str, int]]
    positions: np.ndarray
    channels: np.ndarray
    key: MemberKey

    @functools.cached_property
    def distinct_channels(self) -> np.ndarray:
        """The group channels this member holds, sorted, each once (cached: a member's
        channels never change)."""
        ch = self.channels
        if ch.size < 2 or bool((ch[1:] > ch[:-1]).all()):  # the common case: already so
            return ch
        return np.unique(ch)

    @functools.cached_property
    def n_distinct(self) -> int:
        """How many distinct group channels this member holds (cached; a count, no sort)."""
        ch = self.channels
        return int(np.count_nonzero(np.bincount(ch))) if ch.size else 0

    @functools.cached_property
    def channels_are_identity(self) -> bool:
        """True when ``channels[i] == i`` for every position i (cached)."""
        return _is_arange(self.channels)

    def covers_all(self, n: int) -> bool:
        """True when the member's positions are exactly ``0 .. n-1``: it holds every position of
        its layer's dim, so per-position values need no indexing (positions increase, so the
        count and the last one tell)."""
        pos = self.positions
        return len(pos) == n and (n == 0 or int(pos[-1]) == n - 1)

    def __str__(self) -> str:
        if self.role == "param":
            return f"{self.key.tensor}[dim {self.key.dim}]"
        return f"{self.module}:{self.role}"


def _is_arange(values: np.ndarray) -> bool:
    """True when ``values[i] == i`` for every i (true when empty)."""
    n = len(values)
    return n == 0 or bool(values[0] == 0 and values[-1] == n - 1 and (np.diff(values) == 1).all())


@dataclass
class Group:
    """A set of channels that must be removed together across all its members.

    Attributes:
        id: index in ``DependencyGraph.groups``.
        size: number of channels.
        members: where the channels live.
        locked: per channel, True if it must be kept.
        couplings: the kinds of ops that tie the group together (add, cat, shuffle...).
        coupling_sites: (kind, where) of every op that couples channels of this group, e.g.
            ``("add", "'add' in 'layer1.1'")``, in trace order (for messages).
        cells: when balanced constraints apply (grouped conv, chunk, GroupNorm), the channel
            index arrays that must each lose the same number of channels; None otherwise.
    """

    id: int
    size: int
    members: list[Member] = field(default_factory=list)
    locked: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    lock_reasons: list[str] = field(default_factory=list)
    inexact_reasons: list[str] = field(default_factory=list)
    couplings: set[str] = field(default_factory=set)
    coupling_sites: list[tuple[str, str]] = field(default_factory=list)
    cells: list[np.ndarray] | None = None
    roots: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def prunable(self) -> bool:
        """Some channel can be removed (not all locked, and more than one channel)."""
        return self.size > 1 and not bool(self.locked.all())

    @property
    def exact(self) -> bool:
        """Removing channels equals zeroing them (no normalisation across channels)."""
        return not self.inexact_reasons

    @property
    def reason(self) -> str:
        """Why the group is locked, partly locked, or inexact; "" when none applies."""
        parts = []
        if self.size <= 1:
            parts.append("only one channel")
        n_locked = int(self.locked.sum())
        if n_locked:
            head = "locked" if n_locked == self.size else f"{n_locked} of {self.size} channels locked"
            parts.append(
                f"{head}: " + "; ".join(self.lock_reasons[:3]) + (" ..." if len(self.lock_reasons) > 3 else "")
            )
        if self.inexact_reasons:
            parts.append(
                "inexact: " + "; ".join(self.inexact_reasons[:2]) + (" ..." if len(self.inexact_reasons) > 2 else "")
            )
        return " | ".join(parts)

    def modules(self) -> set[str]:
        return {m.module for m in self.members}


def _add_unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _space_components(ctx: TraceContext, roots: np.ndarray) -> np.ndarray:
    """Per space, its component: spaces whose atoms were coupled, or that share a partition."""
    at = ctx.atoms
    space_of = np.asarray(at.space_of, dtype=np.int64)
    uf = UnionFind(len(at.spaces))
    moved = np.nonzero(roots != np.arange(len(roots)))[0]
    if moved.size:  # thousands of coupled atoms, a few hundred distinct pairs of spaces
        n_spaces = max(len(at.spaces), 1)
        pairs = np.unique(space_of[moved] * n_spaces + space_of[roots[moved]])
        uf.union_pairs((pairs // n_spaces).tolist(), (pairs % n_spaces).tolist())
    for blocks, _ in at.partitions:
        spaces = np.unique(space_of[np.concatenate(blocks)])
        for s in spaces[1:].tolist():
            uf.union(int(spaces[0]), s)
    return uf.roots()


def _member_tensors(model: nn.Module, key: MemberKey) -> list[tuple[str, int]]:
    """The (qualified tensor name, dim) pairs a member slices."""
    if key.role == "param":
        return [(key.tensor, key.dim)]
    module = submodule(model, key.module)
    rule = get_rule(type(module))
    if rule is None:  # members only come from modules that have rules
        raise TraceError(f"member {key.module!r} has no layer rule", module=key.module)
    prefix = f"{key.module}." if key.module else ""
    present = {**module._parameters, **module._buffers}
    return [
        (prefix + t, d)
        for t, d in rule.role_tensors(module, key.role)
        if (present[t] if t in present else getattr(module, t, None)) is not None
    ]


class _Resolver:
    """Maps atoms to (group, channel) once groups are numbered."""

    def __init__(self, roots: np.ndarray, group_of_root: np.ndarray, chan_of_root: np.ndarray, groups: list[Group]):
        self.roots, self.group_of_root, self.chan_of_root, self.groups = roots, group_of_root, chan_of_root, groups

    def per_group(self, atoms: np.ndarray) -> Iterator[tuple[Group, np.ndarray]]:
        r = self.roots[atoms]
        gids = self.group_of_root[r]
        for gid in np.unique(gids[gids >= 0]).tolist():
            yield self.groups[gid], self.chan_of_root[r[gids == gid]]


def _check_size_links(ctx: TraceContext, roots: np.ndarray) -> None:
    """Locks both sides of every reshape whose size is computed from other channels.

    ``x.reshape(B, N, C // h)`` with ``C`` read from another tensor stays consistent after
    pruning only if the reshaped dim holds exactly the channels ``C`` counts.
    """
    at = ctx.atoms
    for held, source, reason in at.size_links:
        if held.size and set(roots[held].tolist()) == set(roots[source].tolist()):
            continue
        why = f"{reason} that are not the channels it reshapes; pruning them would break the reshape"
        at.lock(held, why)
        at.lock(source, why)


def _check_attribute_links(ctx: TraceContext, roots: np.ndarray) -> None:
    """Locks both sides of every reshape sized by a layer attribute (``self.conv.in_channels``)
    unless the reshaped dim holds exactly that layer role's channels, each once: then pruning
    changes the attribute and the dim alike."""
    for held, key, reason in ctx.attribute_links:
        member = ctx.members.get(key)
        if member is not None and held.size == member.size:
            dim_roots, member_roots = roots[held].tolist(), roots[member].tolist()
            if len(set(dim_roots)) == held.size and set(dim_roots) == set(member_roots):
                continue
        why = f"{reason}, but the dim does not hold exactly those channels; pruning them would break the reshape"
        ctx.atoms.lock(held, why)
        if member is not None:
            ctx.atoms.lock(member, why)


def _annotate_groups(ctx: TraceContext, res: _Resolver) -> None:
    """Copies locks, inexact marks, coupling kinds and coupling sites onto the groups."""
    at = ctx.atoms
    for atoms, reason in at.locks:
        for g, ch in res.per_group(atoms):
            g.locked[ch] = True
            _add_unique(g.lock_reasons, reason)
    for atoms, reason in at.inexact:
        for g, _ in res.per_group(atoms):
            _add_unique(g.inexact_reasons, reason)
    for atoms, kind in at.couplings:
        for g, _ in res.per_group(atoms):
            g.couplings.add(kind)
    for atoms, kind, where in ctx.sites:
        for g, _ in res.per_group(atoms):
            if (kind, where) not in g.coupling_sites:
                g.coupling_sites.append((kind, where))


def build_groups(ctx: TraceContext, model: nn.Module) -> tuple[list[Group], dict[MemberKey, np.ndarray]]:
    """Turns the traced atoms into groups. Also returns each member's channel roots per position."""
    at = ctx.atoms
    n = len(at)
    roots = at.roots()
    space_of = np.asarray(at.space_of, dtype=np.int64)
    comp = _space_components(ctx, roots)

    member_roots = {key: roots[atoms] for key, atoms in ctx.members.items()}
    used = np.zeros(n, bool)  # a mask, not np.unique: one pass instead of a sort of every member atom
    for r in member_roots.values():
        used[r] = True
    used_comps = sorted(set(comp[space_of[np.nonzero(used)[0]]].tolist()))

    group_of_root = np.full(n, -1, dtype=np.int64)
    chan_of_root = np.full(n, -1, dtype=np.int64)
    groups: list[Group] = []
    all_roots = np.nonzero(roots == np.arange(n))[0]  # a root is its own root
    root_comp = comp[space_of[all_roots]]
    by_comp = np.argsort(root_comp, kind="stable")  # each component's roots, in increasing order
    comp_sorted = root_comp[by_comp]
    for gid, c in enumerate(used_comps):
        lo, hi = np.searchsorted(comp_sorted, [c, c + 1])
        rs = all_roots[by_comp[lo:hi]]
        group_of_root[rs] = gid
        chan_of_root[rs] = np.arange(len(rs))
        groups.append(Group(id=gid, size=len(rs), locked=np.zeros(len(rs), bool), roots=rs))

    for key, r in member_roots.items():
        gids = group_of_root[r]
        tensors = _member_tensors(model, key)
        if gids.size and gids[0] >= 0 and bool((gids == gids[0]).all()):  # the common case: one group
            gid = int(gids[0])
            pos = np.arange(len(r))
            groups[gid].members.append(Member(key.module, key.role, tensors, pos, chan_of_root[r], key))
            continue
        for gid in np.unique(gids[gids >= 0]).tolist():
            pos = np.nonzero(gids == gid)[0]
            groups[gid].members.append(Member(key.module, key.role, tensors, pos, chan_of_root[r[pos]], key))

    _check_size_links(ctx, roots)
    _check_attribute_links(ctx, roots)
    _annotate_groups(ctx, _Resolver(roots, group_of_root, chan_of_root, groups))
    _resolve_partitions(at.partitions, roots, group_of_root, chan_of_root, groups)
    return groups, member_roots


def _block_channels(
    blocks: list[np.ndarray] | np.ndarray, roots: np.ndarray, chan_of_root: np.ndarray
) -> tuple[list[np.ndarray], set[int]]:
    """Each block's sorted distinct channels, and how often channels repeat within blocks.

    Blocks of one length (a (blocks, length) array, as the trace context records them) whose
    channels are all distinct (a grouped conv's groups, the usual case) are done in one sort
    instead of one ``unique`` per block.
    """
    if isinstance(blocks, np.ndarray):
        ch = np.sort(chan_of_root[roots[blocks]], axis=1)
        if ch.shape[1] < 2 or not (ch[:, 1:] == ch[:, :-1]).any():
            return list(ch), {1}
    chans, mult = [], set()
    for b in blocks:
        ch, counts = np.unique(chan_of_root[roots[b]], return_counts=True)
        chans.append(ch)
        mult.update(counts.tolist())
    return chans, mult


def _row_keys(labels: np.ndarray) -> np.ndarray:
    """One integer per column of ``labels`` (partitions x channels, values >= -1), equal exactly
    when the columns are: ``np.unique`` of these is the unique columns, without the slow
    structured sort of ``np.unique(..., axis=0)``."""
    base = int(labels.max(initial=0)) + 2
    if base ** len(labels) < 2**62:
        keys = np.zeros(labels.shape[1], dtype=np.int64)
        for row in labels:
            keys = keys * base + (row + 1)
        return keys
    return np.unique(labels.T, axis=0, return_inverse=True)[1].reshape(-1)


def _resolve_partitions(partitions, roots, group_of_root, chan_of_root, groups: list[Group]) -> None:
    """Turns balanced partitions into cells per group, or locks the group.

    A partition says its blocks must keep equally many positions. Cells are the channels with the
    same block in every partition. Removing the same fraction of every cell meets all partitions
    at once when, within each partition, the blocks hold equally many channels and every channel
    appears equally often (checked here); selection removes ``k * |cell| / gcd`` per cell.
    """
    by_group: dict[int, list[tuple[list[np.ndarray], str]]] = {}
    for blocks, reason in partitions:
        gid = int(group_of_root[roots[blocks[0][0]]])
        problem = None
        chans, mult = _block_channels(blocks, roots, chan_of_root)
        # blocks holding exactly the same channels (a module reused on two chunks) balance
        # themselves: keep one of them
        unique: dict[bytes, np.ndarray] = {}
        for ch in chans:
            unique.setdefault(ch.tobytes(), ch)
        chans = list(unique.values())
        if len(chans) < 2:
            continue
        if len(mult) > 1:
            problem = f"{reason}: channels repeat unevenly across its blocks"
        elif len({len(c) for c in chans}) > 1:
            problem = f"{reason}: its blocks hold different numbers of channels"
        if problem:
            g = groups[gid]
            g.locked[:] = True
            _add_unique(g.lock_reasons, problem)
            continue
        by_group.setdefault(gid, []).append((chans, reason))
    for gid, parts in by_group.items():
        g = groups[gid]
        labels = np.full((len(parts), g.size), -1, dtype=np.int64)
        problem = None
        for p, (chans, reason) in enumerate(parts):
            flat = np.concatenate(chans)
            if np.bincount(flat, minlength=g.size).max(initial=0) > 1:
                problem = f"{reason} puts one channel in two blocks"
            labels[p, flat] = np.repeat(np.arange(len(chans)), [len(c) for c in chans])
        if problem:
            g.locked[:] = True
            _add_unique(g.lock_reasons, problem)
            continue
        # cells: constrained channels with the same block in every partition, in the order of
        # their first channel
        constrained = np.nonzero((labels >= 0).any(axis=0))[0]
        _, first, inverse = np.unique(_row_keys(labels[:, constrained]), return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        by_cell = constrained[np.argsort(inverse, kind="stable")]
        sizes = np.bincount(inverse)
        if sizes.min() == sizes.max():  # cells of one size (grouped convs): rows, not a split
            members = list(by_cell.reshape(len(sizes), -1))
        else:
            members = np.split(by_cell, np.cumsum(sizes)[:-1])
        g.cells = [members[k] for k in np.argsort(first, kind="stable")]
        g.couplings.add("balanced")
