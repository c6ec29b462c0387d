"""Feature-map point sampling: a layer as a linear map from sampled input rows to output rows.

A Conv2d (``groups == 1``) or Linear consumer computes, at every output point ``p``,
``Y[p, :] = A[p, :] @ W_mat.T + b`` where ``A[p]`` is the input patch under ``p`` (``F.unfold``:
``C_in * kh * kw`` features, channel-major) or the input row of a Linear, and ``W_mat`` the weight
reshaped to ``(C_out, features)``. Reconstruction works on a random subset of points, so memory is
bounded by ``num_samples`` rows per layer however large the calibration set is (He et al. 2017,
sec. 3.2, sample 10 points per image; ThiNet samples likewise).

Rows are drawn per batch from a seeded generator keyed by the layer and the batch index, so the
same points are read from the original model's outputs and the pruned model's inputs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.criteria.data_driven import evaluating, split_batch
from prunekit.errors import ConfigError

__all__ = [
    "unsupported_reason",
    "weight_of",
    "bias_of",
    "weight_matrix",
    "feature_positions",
    "RowSampler",
    "cache_batches",
    "sample_outputs",
    "sample_inputs",
]

_MAX_UNFOLD = 1 << 24  # elements of one unfold chunk: bounds the transient memory of patch extraction


def unsupported_reason(module: nn.Module) -> str | None:
    """Why ``module`` cannot be written as ``Y = A W^T + b``; ``None`` when it can."""
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return f"Conv2d with groups={module.groups} (only groups=1 is linearised)"
        if isinstance(module.padding, str) or module.padding_mode != "zeros":
            return f"Conv2d with padding={module.padding!r}, padding_mode={module.padding_mode!r}"
        return None
    return f"{type(module).__name__} (only Conv2d with groups=1 and Linear are linearised)"


def weight_of(module: nn.Module) -> torch.Tensor:
    """``module.weight`` (a Conv2d's or Linear's), typed as a Tensor."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        raise ConfigError(f"{type(module).__name__} has no weight tensor to refit", module=type(module).__name__)
    return w


def bias_of(module: nn.Module) -> torch.Tensor | None:
    """``module.bias`` when it is a Tensor, else None."""
    b = getattr(module, "bias", None)
    return b if isinstance(b, torch.Tensor) else None


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The weight as ``(C_out, features)``, a view sharing storage with the parameter."""
    w = weight_of(module)
    return w.reshape(w.shape[0], -1)


def feature_positions(module: nn.Module) -> np.ndarray:
    """For each feature (column of ``A``), the input channel position it reads."""
    if isinstance(module, nn.Linear):
        return np.arange(module.in_features)
    w = weight_of(module)
    return np.repeat(np.arange(w.shape[1]), int(np.prod(w.shape[2:])))


def _output_rows(module: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """All output points as rows ``(points, C_out)``, in the order of ``F.unfold`` columns."""
    if isinstance(module, nn.Linear):
        return y.reshape(-1, y.shape[-1])
    return y.movedim(1, -1).reshape(-1, y.shape[1])


def _input_rows(module: nn.Module, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The input rows ``A[rows]`` (patches for a conv), unfolding a few images at a time."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])[rows]
    n = x.shape[0]
    kw: dict[str, Any] = dict(
        kernel_size=module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride
    )
    first = F.unfold(x[:1], **kw)  # (1, features, L)
    features, length = first.shape[1], first.shape[2]
    per_chunk = max(1, _MAX_UNFOLD // max(features * length, 1))
    out: list[torch.Tensor] = []
    for start in range(0, n, per_chunk):
        lo, hi = start * length, min(n, start + per_chunk) * length
        sel = rows[(rows >= lo) & (rows < hi)] - lo
        if sel.numel():
            cols = F.unfold(x[start : start + per_chunk], **kw).transpose(1, 2).reshape(-1, features)
            out.append(cols[sel])
    return torch.cat(out) if out else x.new_zeros(0, features)


class RowSampler:
    """Which output points of each layer are sampled, per batch (seeded, reproducible).

    Args:
        num_samples: points per layer over all batches (spread evenly over ``num_batches``).
        num_batches: how many calibration batches will be seen.
        seed: base seed; the generator of a (layer, batch) pair is seeded from it and both names.
    """

    def __init__(self, *, num_samples: int, num_batches: int, seed: int = 0) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ConfigError(f"num_samples must be an int >= 1, but got {num_samples!r}", module="num_samples")
        self.per_batch = math.ceil(num_samples / max(num_batches, 1))
        self.seed = seed
        self._rows: dict[tuple[str, int], torch.Tensor] = {}

    def rows(self, name: str, batch: int, total: int) -> torch.Tensor:
        """Sorted indices of the sampled points of ``name`` in batch ``batch`` (of ``total``)."""
        key = (name, batch)
        if key not in self._rows:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()) + batch)
            self._rows[key] = torch.randperm(total, generator=g)[: self.per_batch].sort().values
        return self._rows[key]


def cache_batches(data: Iterable[Any], num_batches: int) -> list[torch.Tensor]:
    """The inputs of the first ``num_batches`` batches of ``data`` (targets dropped), kept in memory."""
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ConfigError(f"num_batches must be an int >= 1, but got {num_batches!r}", module="num_batches")
    if data is None:
        raise ConfigError("calibration: give a DataLoader (or any iterable of batches)", module="calibration")
    out: list[torch.Tensor] = []
    for batch in data:
        if len(out) >= num_batches:
            break
        out.append(split_batch(batch)[0])
    if not out:
        raise ConfigError("calibration: the data yielded no batches", module="calibration")
    return out


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _sample(
    model: nn.Module, names: Sequence[str], batches: Sequence[torch.Tensor], rows_of: Any, *, pre: bool
) -> dict[str, torch.Tensor]:
    """One pass over ``batches`` with a hook on each of ``names``; ``rows_of(name, batch, module,
    tensor)`` turns the hooked input (``pre``) or output into the sampled rows, concatenated per layer."""
    got: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    cursor = [0]  # the index of the running batch, read by the hooks

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any = None) -> None:
            t = args[0] if pre else output
            got[name].append(rows_of(name, cursor[0], module, t.detach().float()))

        return hook

    handles = []
    for name in names:
        m = model.get_submodule(name)
        handles.append(m.register_forward_pre_hook(hook_for(name)) if pre else m.register_forward_hook(hook_for(name)))
    device = _device(model)
    try:
        with evaluating(model), torch.no_grad():
            for b, x in enumerate(batches):
                cursor[0] = b
                model(x.to(device))
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in got.items() if v}


def sample_outputs(
    model: nn.Module, names: Sequence[str], batches: Sequence[torch.Tensor], sampler: RowSampler
) -> dict[str, torch.Tensor]:
    """The outputs of the layers ``names`` at their sampled points: ``{name: (points, C_out)}``."""

    def rows_of(name: str, batch: int, module: nn.Module, output: torch.Tensor) -> torch.Tensor:
        y = _output_rows(module, output)
        return y[sampler.rows(name, batch, y.shape[0]).to(y.device)]

    return _sample(model, names, batches, rows_of, pre=False)


def sample_inputs(
    model: nn.Module, names: Sequence[str], batches: Sequence[torch.Tensor], sampler: RowSampler
) -> dict[str, torch.Tensor]:
    """The input rows ``A`` of the layers ``names`` at the points :func:`sample_outputs` read."""

    def rows_of(name: str, batch: int, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(module, nn.Linear):
            total = x.numel() // x.shape[-1]
        else:
            h, w = _out_hw(module, x)
            total = x.shape[0] * h * w
        return _input_rows(module, x, sampler.rows(name, batch, total).to(x.device))

    return _sample(model, names, batches, rows_of, pre=True)


def _out_hw(conv: Any, x: torch.Tensor) -> tuple[int, int]:
    size = []
    for i in range(2):
        k, s, p, d = conv.kernel_size[i], conv.stride[i], conv.padding[i], conv.dilation[i]
        size.append((x.shape[2 + i] + 2 * p - d * (k - 1) - 1) // s + 1)
    return size[0], size[1]
