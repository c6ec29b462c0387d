"""Channel atoms: the bookkeeping under the dependency analysis.

Every layer output that creates new channels (a conv's filters, a Linear's features...) is a
*space*: a run of fresh integer *atoms*, one per channel. A tensor in the traced graph carries an
:class:`Axis`: which of its dims hold channels and, for every position there, the atom it holds.
Ops move atoms around (cat concatenates the arrays, a channel shuffle permutes them, flatten
repeats them H*W times) and couple them: a residual add says atom ``a[i]`` and atom ``b[i]`` must
be removed together, which :class:`AtomTable` records with a :class:`UnionFind`. After tracing,
each union-find class is one prunable *channel*, and connected spaces form a *group*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prunekit.channels.unionfind import UnionFind
from prunekit.errors import TraceError

__all__ = ["Axis", "ParamSource", "SizeOf", "AtomTable"]


@dataclass(frozen=True)
class Axis:
    """The channel layout of one tensor.

    Attributes:
        dims: the tensor dims that hold channels, ascending (usually one, e.g. ``(1,)``).
        atoms: int64 array with ``atoms.shape == tuple(tensor.shape[d] for d in dims)``.
    """

    dims: tuple[int, ...]
    atoms: np.ndarray

    def shift(self, offset: int) -> Axis:
        """The same layout on a tensor with ``offset`` more leading dims (broadcasting)."""
        return Axis(tuple(d + offset for d in self.dims), self.atoms)

    @property
    def flat(self) -> np.ndarray:
        return self.atoms.reshape(-1)


@dataclass(frozen=True)
class ParamSource:
    """A tensor that is (a view of) a parameter or buffer read with ``get_attr``.

    Attributes:
        name: qualified name of the parameter or buffer.
        dim_map: for each dim of the current view, the parameter dim it is, or -1 for a dim added
            by ``expand``/``unsqueeze``.
    """

    name: str
    dim_map: tuple[int, ...]


@dataclass(frozen=True)
class SizeOf:
    """A Python number computed from channel counts (``C = x.shape[1]``, ``C // heads``).

    Attributes:
        atoms: the channels whose count the number depends on (flat int64 array).
    """

    atoms: np.ndarray


@dataclass
class AtomTable:
    """Union-find over atoms, plus what is known about each atom.

    ``space_of[a]`` is the space an atom was created in; spaces are what groups are made of.
    """

    uf: UnionFind = field(default_factory=UnionFind)
    space_of: list[int] = field(default_factory=list)
    spaces: list[str] = field(default_factory=list)  # a label per space, e.g. "layer1.0.conv1:out"
    space_keys: dict[object, np.ndarray] = field(default_factory=dict)
    # atom -> reasons (resolved to channels after tracing)
    locks: list[tuple[np.ndarray, str]] = field(default_factory=list)
    inexact: list[tuple[np.ndarray, str]] = field(default_factory=list)
    couplings: list[tuple[np.ndarray, str]] = field(default_factory=list)
    # balanced partitions: each is (blocks, description); blocks are one 2-D array whose rows
    # are equal blocks, or a list of atom arrays of different lengths
    partitions: list[tuple[list[np.ndarray] | np.ndarray, str]] = field(default_factory=list)
    # (channels on a reshaped dim, channels its size is computed from, description)
    size_links: list[tuple[np.ndarray, np.ndarray, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.uf)

    def new_space(self, key: object, size: int, label: str) -> np.ndarray:
        """Returns the atoms of the space ``key``, creating ``size`` fresh atoms the first time."""
        got = self.space_keys.get(key)
        if got is not None and len(got) == size:
            return got
        start = self.uf.grow(size)
        atoms = np.arange(start, start + size, dtype=np.int64)
        self.space_of.extend([len(self.spaces)] * size)
        self.spaces.append(label)
        if got is None:
            self.space_keys[key] = atoms
        return atoms

    def find(self, a: int) -> int:
        return self.uf.find(a)

    def roots(self) -> np.ndarray:
        """The root atom (channel identity) of every atom."""
        return self.uf.roots()

    def union(self, a: np.ndarray, b: np.ndarray, why: str) -> None:
        """Couples ``a[i]`` with ``b[i]`` for every i (arrays of equal size)."""
        a, b = a.reshape(-1), b.reshape(-1)
        if a.shape != b.shape:
            raise TraceError(f"{why}: cannot couple {a.size} channels with {b.size}")
        if np.array_equal(a, b):
            return
        self.uf.union_pairs(a.tolist(), b.tolist())
        self.couplings.append((a, why))

    def lock(self, atoms: np.ndarray, reason: str) -> None:
        if atoms.size:
            self.locks.append((np.unique(atoms), reason))

    def mark_inexact(self, atoms: np.ndarray, reason: str) -> None:
        if atoms.size:
            self.inexact.append((np.unique(atoms), reason))

    def partition(self, blocks: list[np.ndarray] | np.ndarray, reason: str) -> None:
        """Records that each block must keep the same number of positions."""
        if len(blocks) > 1:
            self.partitions.append((blocks, reason))

    def link_size(self, held: np.ndarray, source: np.ndarray, reason: str) -> None:
        """Records that a dim holding channels ``held`` has a size computed from ``source``.

        After tracing, the two must be the same channels; otherwise both are locked, since
        pruning either would make the model's own size computation disagree with the data.
        """
        self.size_links.append((held.reshape(-1), source.reshape(-1), reason))

    def tag(self, atoms: np.ndarray, coupling: str) -> None:
        """Records the kind of op (cat, flatten...) a set of atoms passes through, for display."""
        if atoms.size:
            self.couplings.append((atoms.reshape(-1), coupling))
