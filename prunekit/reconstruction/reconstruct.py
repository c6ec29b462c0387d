"""``reconstruct_``: the least-squares refit as its own step, after any pruning.

Prune with any criterion (``prunekit.prune_(model, x, criterion="l1", ...)``), then refit, layer
by layer in forward order, every layer that lost input channels so that its output matches the
ORIGINAL model's output (He et al. 2017, eq. (5); Distiller's ``FMReconstructionChannelPruner``
does L1 selection followed by this refit). Each layer's inputs are read from the model refit so
far, so upstream errors are compensated rather than accumulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError, UnknownNameError
from prunekit.reconstruction import sampling
from prunekit.reconstruction.channel_pruning import execution_order
from prunekit.reconstruction.refit import refit_
from prunekit.report import LayerReconstruction, PruneReport

__all__ = ["reconstruct_"]


def _in_size(module: nn.Module) -> int:
    return sampling.weight_matrix(module).shape[1]


def _default_layers(model: nn.Module, original: nn.Module) -> list[str]:
    """Linearisable layers whose input features shrank."""
    ref = dict(original.named_modules())
    return [
        n
        for n, m in model.named_modules()
        if n in ref and sampling.unsupported_reason(m) is None and _in_size(m) < _in_size(ref[n])
    ]


def reconstruct_(
    model: nn.Module,
    original: nn.Module,
    calibration: Iterable[Any],
    *,
    kept: PruneReport | Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    layers: Sequence[str] | None = None,
    num_samples: int = 4096,
    num_batches: int = 8,
    seed: int = 0,
) -> list[LayerReconstruction]:
    """Refits the weights of pruned layers in place so they reproduce ``original``'s outputs.

    For each layer: ``W'* = argmin_W' ||Y_orig[:, kept_out] - A W'^T - b'||^2`` on ``num_samples``
    sampled output points, ``A`` the layer's input rows in ``model`` (``torch.linalg.lstsq``).

    Args:
        model: the pruned model (refit in place; shapes do not change).
        original: the model before pruning (same module names; not modified).
        calibration: a DataLoader or iterable of batches (Tensor or ``(input, target, ...)``).
        kept: the :class:`~prunekit.PruneReport` of the prune (or its ``kept`` dict), to map a
            layer's remaining output channels to the original ones; needed for layers whose
            outputs were pruned too.
        layers: the layers to refit (Conv2d with groups=1 or Linear); default: every such layer
            whose input features shrank.
        num_samples: sampled output points per layer.
        num_batches: calibration batches used.
        seed: seeds the point sampling.

    Returns:
        One :class:`LayerReconstruction` per layer, with the relative error before and after.

    Raises:
        UnknownNameError: a layer is not in ``model`` or ``original``.
        ConfigError: a layer cannot be linearised, or its outputs changed and ``kept`` does not say how.
    """
    kept_map = kept.kept if isinstance(kept, PruneReport) else dict(kept or {})
    batches = sampling.cache_batches(calibration, num_batches)
    sampler = sampling.RowSampler(num_samples=num_samples, num_batches=len(batches), seed=seed)
    ref = dict(original.named_modules())
    names = list(layers) if layers is not None else _default_layers(model, original)
    out_idx: dict[str, torch.Tensor] = {}
    for n in names:
        if n not in ref or n not in dict(model.named_modules()):
            raise UnknownNameError(f"layers: {n!r} is not a module of both models", module=n)
        module = model.get_submodule(n)
        reason = sampling.unsupported_reason(module)
        if reason:
            raise ConfigError(f"layers: {n!r} cannot be refit: {reason}", module=n)
        rows_now, rows_ref = sampling.weight_of(module).shape[0], sampling.weight_of(ref[n]).shape[0]
        if "out" in kept_map.get(n, {}):
            out_idx[n] = torch.as_tensor(list(kept_map[n]["out"]), dtype=torch.long)
        elif rows_now == rows_ref:
            out_idx[n] = torch.arange(rows_now)
        else:
            raise ConfigError(
                f"'{n}' has {rows_now} outputs, the original {rows_ref}: pass kept=report (the PruneReport)",
                module=n,
            )
    order = execution_order(model, (batches[0][:1],))
    names.sort(key=lambda n: order.get(n, 1 << 30))
    targets = sampling.sample_outputs(original, names, batches, sampler)
    rows = []
    for n in names:
        if n not in targets:
            continue  # never called in the forward
        module = model.get_submodule(n)
        a = sampling.sample_inputs(model, [n], batches, sampler)[n]
        y = targets[n][:, out_idx[n].to(targets[n].device)]
        w = sampling.weight_matrix(module)
        feats, outs = torch.arange(w.shape[1]), torch.arange(w.shape[0])
        before, after = refit_(module, a, y, features=feats, outputs=outs)
        rows.append(LayerReconstruction(n, -1, "given", w.shape[1], _in_size(ref[n]), before, after))
    return rows
