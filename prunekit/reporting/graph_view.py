"""A picture of the coupled channel groups: a self-contained HTML page (inline SVG, no network).

Every layer that holds channels is a row, in the model's module order. A row's box is coloured
by the group of its output channels, so coupled layers (a residual stream, the branches of a
concat) share a colour; a locked group is drawn grey with a red border and its reason is
written beside it; a group whose removal is not exact (a norm across channels) is dashed.
Arcs on the left join each layer that reads a group's channels to the layer before it that
writes them, so long arcs are the skips. Hovering a row highlights its group. The table below
the picture lists every group with its size, couplings and reason.
"""

from __future__ import annotations

import colorsys
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from prunekit.fileio import write_text
from prunekit.graph import DependencyGraph, Group

__all__ = ["graph_html", "write_graph_html"]

ROW = 22  # px per layer
ARC_WIDTH = 220  # px for the arcs on the left
BOX_X, BOX_W = ARC_WIDTH + 10, 330
LOCKED_FILL, LOCKED_EDGE = "#d9d9d9", "#c0392b"


@dataclass
class _Row:
    """One layer of the picture."""

    name: str
    kind: str
    out_groups: list[int] = field(default_factory=list)
    in_groups: list[int] = field(default_factory=list)


def _colour(gid: int) -> str:
    """A distinct, readable hue per group (golden-angle steps around the colour wheel)."""
    r, g, b = colorsys.hls_to_rgb((gid * 0.618034) % 1.0, 0.72, 0.62)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _rows(graph: DependencyGraph) -> list[_Row]:
    order = {name: i for i, (name, _) in enumerate(graph.model.named_modules())}
    rows: dict[str, _Row] = {}
    for g in graph.groups:
        for m in g.members:
            row = rows.get(m.module)
            if row is None:
                kind = type(graph.model.get_submodule(m.module)).__name__ if m.module in order else "parameter"
                row = rows[m.module] = _Row(m.module or "(model)", kind)
            target = row.in_groups if m.role == "in" else row.out_groups
            if g.id not in target:
                target.append(g.id)
    return sorted(rows.values(), key=lambda r: order.get(r.name, len(order)))


def _edges(graph: DependencyGraph, rows: list[_Row]) -> list[tuple[int, int, int]]:
    """(from row, to row, group): each reader of a group to the nearest writer above it."""
    index = {r.name: i for i, r in enumerate(rows)}
    edges = []
    for g in graph.groups:
        writers = sorted(index[m.module or "(model)"] for m in g.members if m.role != "in")
        for m in g.members:
            if m.role != "in":
                continue
            to = index[m.module or "(model)"]
            above = [w for w in writers if w < to]
            if above:
                edges.append((above[-1], to, g.id))
    return edges


def _status(g: Group) -> str:
    if not g.prunable:
        return "locked"
    return "prunable" if g.exact else "prunable, not exact"


def _svg(graph: DependencyGraph, rows: list[_Row]) -> str:
    groups = {g.id: g for g in graph.groups}
    height = ROW * len(rows) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{BOX_X + BOX_W + 520}" height="{height}">']
    for a, b, gid in _edges(graph, rows):
        ya, yb = 10 + ROW * a + ROW / 2, 10 + ROW * b + ROW / 2
        bend = ARC_WIDTH - min(ARC_WIDTH - 8, 6 + 14 * (b - a) ** 0.5)
        colour = LOCKED_EDGE if not groups[gid].prunable else _colour(gid)
        parts.append(
            f'<path class="g{gid}" d="M {BOX_X} {ya} C {bend} {ya}, {bend} {yb}, {BOX_X} {yb}" '
            f'fill="none" stroke="{colour}" stroke-width="1.4" opacity="0.8"/>'
        )
    for i, row in enumerate(rows):
        y = 10 + ROW * i
        gid = row.out_groups[0] if row.out_groups else (row.in_groups[0] if row.in_groups else -1)
        g = groups.get(gid)
        locked = g is not None and not g.prunable
        fill = LOCKED_FILL if locked or g is None else _colour(gid)
        edge = LOCKED_EDGE if locked else "#555"
        dash = ' stroke-dasharray="4 2"' if g is not None and g.prunable and not g.exact else ""
        label = f"{row.name} ({row.kind})"
        outs = ", ".join(f"g{o}" for o in row.out_groups) or "-"
        ins = ", ".join(f"g{o}" for o in row.in_groups) or "-"
        note = f"out {outs} | in {ins}"
        if locked and g is not None:
            note += f" | {g.reason}"
        tip = html.escape(f"{label}\n{note}")
        parts.append(
            f'<g class="row g{gid}" data-group="{gid}"><title>{tip}</title>'
            f'<rect x="{BOX_X}" y="{y + 2}" width="{BOX_W}" height="{ROW - 4}" rx="4" fill="{fill}" '
            f'stroke="{edge}" stroke-width="{2 if locked else 1}"{dash}/>'
            f'<text x="{BOX_X + 6}" y="{y + ROW / 2 + 4}" font-size="11">{html.escape(label[:52])}</text>'
            f'<text x="{BOX_X + BOX_W + 8}" y="{y + ROW / 2 + 4}" font-size="11" '
            f'fill="{LOCKED_EDGE if locked else "#333"}">{html.escape(note[:90])}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _table(graph: DependencyGraph) -> str:
    head = "<tr><th>group</th><th>size</th><th>status</th><th>couplings</th><th>members</th><th>reason</th></tr>"
    body = []
    for g in graph.groups:
        members = ", ".join(str(m) for m in g.members[:6]) + (f" (+{len(g.members) - 6})" if len(g.members) > 6 else "")
        swatch = LOCKED_FILL if not g.prunable else _colour(g.id)
        body.append(
            f'<tr class="g{g.id}"><td><span class="sw" style="background:{swatch}"></span>{g.id}</td>'
            f"<td>{g.size}</td><td>{_status(g)}</td><td>{html.escape(', '.join(sorted(g.couplings)) or '-')}</td>"
            f"<td>{html.escape(members)}</td><td>{html.escape(g.reason or '')}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


STYLE = """
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; } p { font-size: 13px; max-width: 1000px; }
table { border-collapse: collapse; font-size: 12px; margin-top: 16px; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
.sw { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border: 1px solid #555; }
.hl rect { stroke: #000 !important; stroke-width: 3 !important; } path.hl { stroke-width: 4 !important; opacity: 1; }
tr.hl { background: #fff3c4; }
"""

SCRIPT = """
document.querySelectorAll('.row').forEach(function (row) {
  var cls = 'g' + row.dataset.group;
  row.addEventListener('mouseenter', function () {
    document.querySelectorAll('.' + cls).forEach(function (e) { e.classList.add('hl'); });
  });
  row.addEventListener('mouseleave', function () {
    document.querySelectorAll('.' + cls).forEach(function (e) { e.classList.remove('hl'); });
  });
});
"""


def graph_html(graph: DependencyGraph, *, title: str | None = None) -> str:
    """The page for ``graph`` (see the module docstring)."""
    name = title or type(graph.model).__name__
    prunable = sum(g.prunable for g in graph.groups)
    inexact = sum(g.prunable and not g.exact for g in graph.groups)
    summary = (
        f"{len(graph.groups)} channel groups: {prunable} prunable ({inexact} not exactly), "
        f"{len(graph.groups) - prunable} locked. Colour = the group of a layer's output channels; grey with a "
        "red border = locked (the reason is written beside it); dashed = prunable but not exactly "
        "equivalent; arcs join each reader of a group to the writer above it. Hover a layer to see its group."
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(name)}: prunekit groups</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(name)}: coupled channel groups</h1>"
        f"<p>{html.escape(summary)}</p>{_svg(graph, _rows(graph))}{_table(graph)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_graph_html(graph: DependencyGraph, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Writes :func:`graph_html` to ``path`` (atomically) and returns the path."""
    return write_text(path, graph_html(graph, title=title))
