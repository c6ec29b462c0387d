"""Union-find over integers: the one disjoint-set structure prunekit uses.

Atoms (channels) are merged when an op couples them; spaces (layer outputs) are merged into
groups when their atoms were coupled. Both use :class:`UnionFind`. ``find`` compresses paths and
``union`` keeps the smaller index as the root, so roots are deterministic (the first atom created).
"""

from __future__ import annotations

import numpy as np

__all__ = ["UnionFind"]


class UnionFind:
    """A growable disjoint-set forest over ``0 .. len(self) - 1``.

    Args:
        size: number of singleton sets to start with.
    """

    def __init__(self, size: int = 0) -> None:
        self.parent: list[int] = list(range(size))

    def __len__(self) -> int:
        return len(self.parent)

    def grow(self, count: int) -> int:
        """Adds ``count`` singleton sets; returns the first new index."""
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return start

    def find(self, a: int) -> int:
        """The root of ``a``'s set (with path compression)."""
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def union(self, a: int, b: int) -> bool:
        """Merges the sets of ``a`` and ``b``; the smaller root wins. True if they were apart."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def union_pairs(self, a: list[int], b: list[int]) -> None:
        """``union(a[i], b[i])`` for every i, in one loop with the finds inlined (an add or cat
        of wide tensors couples thousands of channels)."""
        parent = self.parent
        for x, y in zip(a, b):
            rx = x
            while parent[rx] != rx:
                rx = parent[rx]
            ry = y
            while parent[ry] != ry:
                ry = parent[ry]
            while parent[x] != rx:  # compress both paths
                parent[x], x = rx, parent[x]
            while parent[y] != ry:
                parent[y], y = ry, parent[y]
            if rx < ry:
                parent[ry] = rx
            elif ry < rx:
                parent[rx] = ry

    def roots(self) -> np.ndarray:
        """``roots()[a] == find(a)`` for every element, as an int64 array."""
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:  # pointer jumping: each pass halves every path, all elements at once
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        self.parent = parent.tolist()  # fully compressed
        return parent
