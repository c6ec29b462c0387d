"""Reshape sizes read from layer attributes: ``x.view(-1, self.conv.in_channels, 4, 4)``.

``torch.fx`` records such a size as the number it was (a plain ``int`` attribute is read, not
traced), so it looks hard-coded and locks its channels. But the surgery updates exactly these
attributes (``in_channels``/``out_channels`` of a conv, ``in_features``/``out_features`` of a
Linear), so at run time the pruned model reads the new size. To tell such a size from a literal,
the model is traced again with the attribute set to a different value (tracing runs no tensor
op, so the odd value breaks nothing): the size arguments that follow it are reads of it.
:func:`probe_size_attributes` records them on the view nodes, in
``node.meta["prunekit_size_attrs"]`` (size index -> (module name, attribute)). The channel rules
then accept the size only if the reshaped dim holds exactly that layer's channels (see
:meth:`~prunekit.channels.TraceContext.link_attribute`); otherwise the channels stay locked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

__all__ = ["SIZE_ATTRIBUTES", "META_KEY", "size_arguments", "probe_size_attributes"]

#: Attributes the surgery updates, and the role ("in"/"out") of the channels they count.
SIZE_ATTRIBUTES: dict[str, str] = {
    "in_channels": "in",
    "out_channels": "out",
    "in_features": "in",
    "out_features": "out",
}
META_KEY = "prunekit_size_attrs"
_VIEWS = ("view", "reshape")
_OFFSET = 7919  # added to a probed attribute: a value no real size in the graph is likely to have
_MAX_PROBES = 16  # each probe is one more trace


def size_arguments(node: fx.Node) -> list[Any] | None:
    """The raw size arguments of a ``view``/``reshape`` node, or None for other nodes."""
    if node.op == "call_method" and node.target in _VIEWS or node.target is torch.reshape:
        sizes = list(node.args[1:])
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = list(sizes[0])
        return sizes
    return None


def _candidates(model: nn.Module, literals: set[int]) -> list[tuple[str, nn.Module, str]]:
    out: list[tuple[str, nn.Module, str]] = []
    for name, m in model.named_modules():
        if not isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            continue
        for attr in SIZE_ATTRIBUTES:
            value = getattr(m, attr, None)
            if isinstance(value, int) and value > 1 and value in literals:
                out.append((name, m, attr))
    return out


def _same_structure(a: list[fx.Node], b: list[fx.Node]) -> bool:
    """Same ops on the same targets (a get_attr of a tensor constant is named anew per trace)."""
    return len(a) == len(b) and all(x.op == y.op and (x.op == "get_attr" or x.target == y.target) for x, y in zip(a, b))


def _probe(
    model: nn.Module, base: list[fx.Node], retrace: Callable[[], fx.Graph], probes: list[tuple[str, nn.Module, str]]
) -> bool:
    """Retraces with each probed attribute moved to its own odd value; marks the sizes that
    moved with it. False when the graph changed shape (an attribute steers control flow)."""
    values = [getattr(m, attr) for _, m, attr in probes]
    moved_to = {v + _OFFSET * (i + 1): (name, attr, v) for i, ((name, _, attr), v) in enumerate(zip(probes, values))}
    if len(moved_to) != len(probes) or set(moved_to) & set(values):  # every probe value tells one attribute
        return False
    before = set(vars(model))
    try:
        for (_, m, attr), new in zip(probes, moved_to):
            setattr(m, attr, new)
        probe = list(retrace().nodes)
    except Exception:  # the odd values broke the trace itself: these attributes stay unknown
        return False
    finally:
        for (_, m, attr), v in zip(probes, values):
            setattr(m, attr, v)
        for key in set(vars(model)) - before:  # fx stores tensor constants on the root
            delattr(model, key)
    if not _same_structure(base, probe):
        return False
    for node, other in zip(base, probe):
        sizes, moved = size_arguments(node), size_arguments(other)
        if sizes is None or moved is None or len(sizes) != len(moved):
            continue
        for i, (s, t) in enumerate(zip(sizes, moved)):
            hit = moved_to.get(t) if isinstance(t, int) else None
            if hit is not None and s == hit[2]:
                node.meta.setdefault(META_KEY, {})[i] = hit[:2]
    return True


def probe_size_attributes(model: nn.Module, graph: fx.Graph, retrace: Callable[[], fx.Graph]) -> None:
    """Marks the view/reshape sizes of ``graph`` that are reads of a layer's size attribute.

    All candidate attributes (those whose value is a literal view size somewhere) are probed in
    one retrace, each with its own odd value; if that changes the graph's shape, each is probed
    alone (at most ``_MAX_PROBES``).

    Args:
        model: the traced model (its attributes are changed during a probe and restored).
        graph: the graph ``retrace`` returned with the model unchanged.
        retrace: traces the model again, the same way.
    """
    views = [s for s in (size_arguments(n) for n in graph.nodes) if s is not None]
    literals = {s for sizes in views for s in sizes if isinstance(s, int) and not isinstance(s, bool)}
    candidates = _candidates(model, literals) if literals else []
    base = list(graph.nodes)
    if not candidates or _probe(model, base, retrace, candidates):
        return
    for candidate in candidates[:_MAX_PROBES]:
        _probe(model, base, retrace, [candidate])
