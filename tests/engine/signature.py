"""A dependency graph as comparable data (for the engine tests)."""

from __future__ import annotations

import numpy as np

import prunekit


def group_signature(graph: prunekit.DependencyGraph) -> set:
    """The groups as data independent of atom numbering: per group its size, members (key,
    positions, channels relabelled by first appearance), locked channels, exactness, couplings."""
    out = set()
    for g in graph.groups:
        members = sorted(g.members, key=lambda m: (str(m.key), m.positions.tolist()))
        relabel: dict[int, int] = {}
        rows = []
        for m in members:
            chans = tuple(relabel.setdefault(int(c), len(relabel)) for c in m.channels)
            rows.append((str(m.key), tuple(m.positions.tolist()), chans))
        locked = tuple(sorted(relabel.get(int(c), -1) for c in np.nonzero(g.locked)[0]))
        cells = (
            None
            if g.cells is None
            else tuple(sorted(tuple(sorted(relabel.get(int(c), -1) for c in cell)) for cell in g.cells))
        )
        out.add((g.size, tuple(rows), locked, cells, g.exact, frozenset(g.couplings)))
    return out
