"""Layer rule for convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d.

* Plain conv: input channels are the "in" role (weight dim 1), filters the "out" role
  (weight dim 0 and bias).
* Depthwise conv (``groups == in_channels``, ``out_channels = k * in_channels``): output channel
  ``j`` reads input channel ``j // k`` only, so the conv is channel-preserving: its outputs carry
  the input's channels (each repeated ``k`` times) and ``groups`` follows ``in_channels``.
* Grouped conv (``1 < groups < in_channels``): output channel ``o`` of group ``o // (out/g)``
  reads weight ``W[o, j]`` for local input ``j``. Removing input channels is a per-group gather,
  so every group must keep the same number of input (and output) channels: the rule records a
  balanced partition and the selection honours it.
* Transposed convs swap the weight dims (weight is ``(in, out/g, ...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.channels import Axis, channel_atoms, layer_label
from prunekit.rules.base import LayerRule, require_balanced

__all__ = ["ConvRule"]


def _is_depthwise(m: nn.modules.conv._ConvNd) -> bool:
    return m.groups > 1 and m.groups == m.in_channels


class ConvRule(LayerRule):
    """Channels of (transposed, grouped, depthwise, dilated) convolutions."""

    def propagate(self, ctx, name, module, args, axes, output):
        m = module
        x = args[0]
        nsp = len(m.kernel_size)
        cdim, ocdim = x.ndim - nsp - 1, output.ndim - nsp - 1
        what = layer_label(name, m)
        atoms_in = channel_atoms(ctx, axes[0], cdim, what)
        g = m.groups
        if _is_depthwise(m):
            k = m.out_channels // m.in_channels
            if atoms_in is None:
                atoms_in = ctx.opaque(m.in_channels, f"input channels of depthwise {what} cannot be followed")
            ctx.member(name, "in", atoms_in)
            out_atoms = np.repeat(atoms_in, k)
            ctx.member(name, "out", out_atoms)
            ctx.tag(out_atoms, "depthwise")
            return Axis((ocdim,), out_atoms)
        if atoms_in is not None:
            ctx.member(name, "in", atoms_in)
            if g > 1:
                ctx.partition(atoms_in.reshape(g, -1), f"grouped conv '{name}' (groups={g}) inputs")
        out_atoms = ctx.new_space((name, "out"), m.out_channels, f"{name}:out")
        ctx.member(name, "out", out_atoms)
        if g > 1:
            ctx.partition(out_atoms.reshape(g, -1), f"grouped conv '{name}' (groups={g}) outputs")
        return Axis((ocdim,), out_atoms)

    def role_tensors(self, module, role):
        m = module
        if role == "out":
            return [("weight", 1 if m.transposed else 0), ("bias", 0)]
        if _is_depthwise(m):
            return []
        return [("weight", 0 if m.transposed else 1)]

    def position_views(self, module, role):
        m = module
        W = m.weight.detach()
        g = m.groups
        views = []
        if role == "out":
            if not m.transposed:
                views.append(W.reshape(W.shape[0], -1))
            elif _is_depthwise(m):
                views.append(W.reshape(W.shape[0] * W.shape[1], -1))
            else:  # (in, out/g, k) -> per output channel
                cin_g = W.shape[0] // g
                v = W.reshape(g, cin_g, W.shape[1], -1).permute(0, 2, 1, 3)
                views.append(v.reshape(m.out_channels, -1))
            if m.bias is not None:
                views.append(m.bias.detach().reshape(-1, 1))
        elif role == "in" and not _is_depthwise(m):
            if m.transposed:
                views.append(W.reshape(W.shape[0], -1))
            else:  # (out, in/g, k) -> per input channel
                cout_g = W.shape[0] // g
                v = W.reshape(g, cout_g, W.shape[1], -1).permute(0, 2, 1, 3)
                views.append(v.reshape(m.in_channels, -1))
        return views

    def slice_tensors(self, module, tensors: Mapping[str, torch.Tensor], keep: Mapping[str, torch.Tensor]):
        m = module
        W = tensors["weight"]
        b = tensors.get("bias")
        g, cin, cout = m.groups, m.in_channels, m.out_channels
        out_idx, in_idx = keep.get("out"), keep.get("in")
        name = getattr(m, "_prunekit_name", type(m).__name__)
        if _is_depthwise(m):
            if out_idx is None:
                return dict(tensors)
            k = cout // cin
            in_d = out_idx[::k] // k
            W = W.index_select(0, (in_d if m.transposed else out_idx).to(W.device))
        elif not m.transposed:
            W = _rows_then_columns(W, out_idx, in_idx, cout, cin, g, ("output channels", "input channels"), name)
        else:
            W = _rows_then_columns(W, in_idx, out_idx, cin, cout, g, ("input channels", "output channels"), name)
        out = dict(tensors)
        out["weight"] = W
        if b is not None and out_idx is not None:
            out["bias"] = b.index_select(0, out_idx.to(b.device))
        return out

    def new_attributes(self, module, tensors) -> dict[str, Any]:
        m = module
        W = tensors["weight"]
        if _is_depthwise(m):
            k = m.out_channels // m.in_channels
            cin = W.shape[0] if m.transposed else W.shape[0] // k
            return {"in_channels": cin, "out_channels": cin * k, "groups": cin}
        if m.transposed:
            return {"in_channels": W.shape[0], "out_channels": W.shape[1] * m.groups}
        return {"in_channels": W.shape[1] * m.groups, "out_channels": W.shape[0]}

    def input_dim(self, module, ndim):
        return ndim - len(module.kernel_size) - 1

    def mixes_inputs(self, module):
        return not _is_depthwise(module)


def _rows_then_columns(
    W: torch.Tensor,
    row_idx: torch.Tensor | None,
    col_idx: torch.Tensor | None,
    n_rows: int,
    n_cols: int,
    groups: int,
    what: tuple[str, str],
    name: str,
) -> torch.Tensor:
    """``W`` (rows, cols per group, k...) keeping ``row_idx`` rows and ``col_idx`` columns (both
    in full channel numbering; ``None`` keeps all). Ungrouped cuts are two ``index_select``s
    (advanced indexing on dim 1 costs several times more); a grouped cut maps each kept row's
    columns to its group's local numbering."""
    if row_idx is not None and groups > 1:
        require_balanced(row_idx, n_rows, groups, what[0], name)
    if row_idx is not None:
        W = W.index_select(0, row_idx.to(W.device))
    if col_idx is None:
        return W
    if groups == 1:
        return W.index_select(1, col_idx.to(W.device))
    local = require_balanced(col_idx, n_cols, groups, what[1], name)
    rows = row_idx if row_idx is not None else torch.arange(n_rows)
    return W[torch.arange(len(rows))[:, None], local[rows // (n_rows // groups)]]
