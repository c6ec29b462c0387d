"""Stand-ins for the ops whose arithmetic the shape-only mode skips.

Convolutions, matrix products, pooling and eval-mode batch norms are the kernels whose values a
shape-only run never reads: :func:`skipped_output` returns zeros of each one's output shape
instead, after the size checks the kernel would make (channels against weights, inner dims of
products), so a pruned model whose layers no longer fit still fails here as it would for real.
:mod:`prunekit.engine.macs` counts the MACs of these ops and calls this module for their
outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["SKIPPABLE", "shape_of_skipped", "skipped_output", "eval_batch_norm", "conv_shape"]

aten = torch.ops.aten


def conv_shape(args: Sequence[Any]) -> tuple[int, ...] | None:
    """The output shape of ``aten.convolution`` on ``args`` (``None``: a layout this does not
    handle, so the kernel runs), raising as the kernel would on channels that do not fit."""
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    nd = w.ndim - 2
    if x.ndim != nd + 2 or nd < 1:
        return None
    if transposed:
        if x.shape[1] != w.shape[0]:
            raise RuntimeError(f"convolution: input has {x.shape[1]} channels, weight expects {w.shape[0]}")
        out_c = w.shape[1] * groups
        sizes = [
            (x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (w.shape[2 + i] - 1)
            + output_padding[i] + 1
            for i in range(nd)
        ]  # fmt: skip
    else:
        if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
            raise RuntimeError(
                f"convolution: input has {x.shape[1]} channels, weight {tuple(w.shape)} with groups={groups} "
                f"expects {w.shape[1] * groups}"
            )
        out_c = w.shape[0]
        sizes = [
            (x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
            for i in range(nd)
        ]
    if b is not None and b.numel() != out_c:
        raise RuntimeError(f"convolution: bias has {b.numel()} values for {out_c} output channels")
    if min(sizes) < 1:
        return None  # let the kernel raise its own error
    return (x.shape[0], out_c, *sizes)


def _mm_shape(a: torch.Tensor, b: torch.Tensor, batched: bool) -> tuple[int, ...] | None:
    if a.ndim != 2 + batched or b.ndim != 2 + batched:
        return None
    if a.shape[-1] != b.shape[-2] or (batched and a.shape[0] != b.shape[0]):
        raise RuntimeError(f"matrix product: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")
    return (*a.shape[:-1], b.shape[-1])


def eval_batch_norm(args: Sequence[Any], *, reuse: bool = False) -> tuple[torch.Tensor, ...] | None:
    """``native_batch_norm`` in eval mode: zeros of the input's shape, after the size checks
    (``reuse``: the input itself, when it is a stand-in this mode made, so nobody else's)."""
    x, training = args[0], args[5]
    if training or x.ndim < 2:
        return None
    for what, t in zip(("weight", "bias", "running_mean", "running_var"), args[1:5]):
        if t is not None and t.numel() != x.shape[1]:
            raise RuntimeError(f"batch_norm: {what} has {t.numel()} values for {x.shape[1]} channels")
    empty = x.new_zeros(0)
    out = x if reuse else torch.zeros_like(x, memory_format=torch.contiguous_format)
    return out, empty, empty.clone()


def shape_of_skipped(func: Any, args: Sequence[Any]) -> tuple[int, ...] | None:
    """The output shape of a convolution or matrix product, or ``None`` to run ``func`` for real.

    Raises:
        RuntimeError: the shapes do not fit (as the kernel would).
    """
    if func is aten.convolution.default:
        return conv_shape(args)
    if func is aten.mm.default:
        return _mm_shape(args[0], args[1], False)
    if func is aten.bmm.default:
        return _mm_shape(args[0], args[1], True)
    if func is aten.addmm.default:
        return _mm_shape(args[1], args[2], False)
    if func is aten.baddbmm.default:
        return _mm_shape(args[1], args[2], True)
    return None


#: Pooling kernels: their window loops cost as much as a small convolution (a 3x3 max pool on
#: 64x112x112 takes ~9 ms on one core) but their output shapes come from the meta kernels.
_POOLS = {
    aten.max_pool1d_with_indices.default,
    aten.max_pool2d_with_indices.default,
    aten.max_pool3d_with_indices.default,
    aten.avg_pool1d.default,
    aten.avg_pool2d.default,
    aten.avg_pool3d.default,
    aten._adaptive_avg_pool2d.default,
    aten._adaptive_avg_pool3d.default,
    aten.adaptive_max_pool2d.default,
    aten.adaptive_max_pool3d.default,
}
_POOL_MIN_NUMEL = 1 << 14  # below this, the real kernel is cheaper than the meta call

SKIPPABLE = {
    aten.convolution.default,
    aten.mm.default,
    aten.bmm.default,
    aten.addmm.default,
    aten.baddbmm.default,
    aten.native_batch_norm.default,
    *_POOLS,
}


def _pooled(func: Any, args: Sequence[Any]) -> Any:
    """Zeros of a pooling op's outputs, shaped (and checked) by its meta kernel, or ``None`` for
    a small input."""
    x = args[0]
    if x.numel() < _POOL_MIN_NUMEL:
        return None
    meta = func(torch.empty_like(x, device="meta"), *args[1:])
    if isinstance(meta, tuple):
        return tuple(torch.zeros(m.shape, dtype=m.dtype, device=x.device) for m in meta)
    return torch.zeros(meta.shape, dtype=meta.dtype, device=x.device)


def skipped_output(func: Any, args: Sequence[Any], *, reuse_input: bool = False) -> Any:
    """Zeros standing for the output of a convolution, a matrix product, a pooling or an
    eval-mode batch norm (after the kernel's shape checks), or ``None`` to run ``func`` for real.

    ``reuse_input``: a batch norm may return its input itself (only for an input that is
    a stand-in, whose values nobody reads).
    """
    if func is aten.native_batch_norm.default:
        return eval_batch_norm(args, reuse=reuse_input)
    if func in _POOLS:
        return _pooled(func, args)
    shape = shape_of_skipped(func, args)
    if shape is None:
        return None
    ref = args[1] if func in (aten.addmm.default, aten.baddbmm.default) else args[0]
    return torch.zeros(shape, dtype=ref.dtype, device=ref.device)
