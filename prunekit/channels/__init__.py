"""The channel vocabulary: what layer rules and op rules are written in.

This package sits below :mod:`prunekit.rules` and :mod:`prunekit.graph` (imports run
``errors -> channels -> rules -> graph -> surgery``), so a user writing a rule for their own layer
or op imports everything it needs from here, with no private names:

* :class:`Axis`: which dims of a tensor hold channels and which channel (atom) sits where;
* :class:`ParamSource`: a tensor that is a view of a parameter;
* :class:`SizeOf`: a number the model computes from channel counts (``C // heads``);
* :class:`TraceContext`: what a rule reports to (new channels, members, couplings, locks);
* :func:`channel_atoms`, :func:`reshape_axis`, :func:`permute_axis`: helpers for rules;
* :class:`UnionFind`, :class:`AtomTable`: the bookkeeping under it all.
"""

from prunekit.channels.atoms import AtomTable, Axis, ParamSource, SizeOf
from prunekit.channels.context import (
    Ann,
    MemberKey,
    TraceContext,
    channel_atoms,
    iter_axes,
    layer_label,
    node_label,
)
from prunekit.channels.reshape import match_runs, permute_axis, reshape_axis
from prunekit.channels.unionfind import UnionFind

__all__ = [
    "Ann",
    "AtomTable",
    "Axis",
    "MemberKey",
    "ParamSource",
    "SizeOf",
    "TraceContext",
    "UnionFind",
    "channel_atoms",
    "iter_axes",
    "layer_label",
    "match_runs",
    "node_label",
    "permute_axis",
    "reshape_axis",
]
