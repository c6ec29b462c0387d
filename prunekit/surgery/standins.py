"""The layers that take the place of a removed branch.

When every channel of a group goes (``remove_branches``, see :mod:`prunekit.graph.branches`),
its layers cannot shrink to width 0: PyTorch refuses a conv or linear with no output or input
channels. Each layer of the group is replaced instead:

* a layer whose **outputs** all go (the producers, and the per-channel layers such as BatchNorm
  or a depthwise conv between them) becomes :class:`Emptied`: it returns a tensor of the shape
  the layer would return, with 0 channels, and computes nothing;
* a layer whose **inputs** all go (the consumers) becomes :class:`ConstantOutput`: with every
  input channel zeroed, a conv or linear computes its bias (zero without one) at every position,
  so it returns that, broadcast to the shape the layer would return. The bias stays a trainable
  parameter.

Both keep the replaced layer's geometry (kernel size, stride, padding, dilation), so the shape
they return follows the input's shape exactly as the layer's would: the pruned model computes
what the original computes with the group's channels zeroed, and the equivalence check proves it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from prunekit.errors import SurgeryError

__all__ = ["Emptied", "ConstantOutput", "standin_for", "is_standin"]


def _tracing() -> bool:
    """True under a tracer (``torch.jit.trace``, dynamo, ``torch.export``): shapes may be symbolic
    and a remembered tensor would be baked into the graph, so nothing is cached."""
    compiler = torch.compiler
    exporting = getattr(compiler, "is_exporting", None)
    return torch.jit.is_tracing() or compiler.is_compiling() or bool(exporting and exporting())


def _spatial(
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...] | str,
    dilation: tuple[int, ...],
) -> tuple[int, ...]:
    """A convolution's output sizes: ``floor((n + 2p - d (k - 1) - 1) / s) + 1`` per dim
    (``padding="same"`` keeps ``n``; ``"valid"`` is ``p = 0``)."""
    if padding == "same":
        return tuple(sizes)
    pad: tuple[int, ...] = (0,) * len(kernel) if isinstance(padding, str) else padding
    return tuple(
        math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1 for n, k, s, p, d in zip(sizes, kernel, stride, pad, dilation)
    )


class _Geometry(nn.Module):
    """Shared shape logic: a conv geometry (``kernel_size`` non-empty) or a last-dim layer."""

    def __init__(
        self,
        kernel_size: tuple[int, ...] = (),
        stride: tuple[int, ...] = (),
        padding: tuple[int, ...] | str = (),
        dilation: tuple[int, ...] = (),
        replaces: str = "",
    ) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.padding = padding if isinstance(padding, str) else tuple(padding)
        self.dilation = tuple(dilation)
        self.replaces = replaces
        self._shapes: dict[tuple, tuple[int, ...]] = {}  # (input shape, channels) -> output shape

    def geometry(self) -> dict:
        """The keyword arguments that make a stand-in of the same geometry."""
        keys = ("kernel_size", "stride", "padding", "dilation", "replaces")
        return {k: getattr(self, k) for k in keys}

    def channel_dim(self, ndim: int) -> int:
        """The channel dim of a tensor of ``ndim`` dims this layer returns."""
        n = len(self.kernel_size)
        if n:
            return ndim - n - 1
        return ndim - 1 if self.replaces == "linear" else min(1, ndim - 1)

    def out_shape(self, x: torch.Tensor, channels: int) -> tuple[int, ...]:
        """The shape the replaced layer returns on ``x``, with ``channels`` channels (remembered
        per input shape: a stand-in runs where per-call Python overhead is what it costs)."""
        if _tracing():
            return self._out_shape(x, channels)
        key = (tuple(x.shape), channels)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = self._out_shape(x, channels)
        return shape

    def _out_shape(self, x: torch.Tensor, channels: int) -> tuple[int, ...]:
        n = len(self.kernel_size)
        if not n:  # a linear layer: channels last; a per-channel one: channels at dim 1
            return (*x.shape[:-1], channels) if self.replaces == "linear" else (*x.shape[:1], channels, *x.shape[2:])
        lead = x.shape[: x.ndim - n - 1]
        return (
            *lead,
            channels,
            *_spatial(tuple(x.shape[-n:]), self.kernel_size, self.stride, self.padding, self.dilation),
        )

    def extra_repr(self) -> str:
        if self.kernel_size:
            return f"replaces={self.replaces!r}, kernel_size={self.kernel_size}, stride={self.stride}"
        return f"replaces={self.replaces!r}"


class Emptied(_Geometry):
    """A layer all of whose output channels were removed: returns a tensor of the shape the
    layer would return, with 0 channels (no memory, no compute). The tensor holds no element,
    so one per input shape, dtype and device is made and returned again."""

    def __init__(self, **geometry) -> None:
        super().__init__(**geometry)
        self._empty: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _tracing():
            return x.new_zeros(self.out_shape(x, 0))
        # an inference tensor must not reach autograd later: inference mode is part of the key
        key = (tuple(x.shape), x.dtype, x.device, torch.is_inference_mode_enabled())
        out = self._empty.get(key)
        if out is None:
            out = self._empty[key] = x.new_zeros(self.out_shape(x, 0))
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_empty"] = {}  # tensors made on the fly are not part of the layer
        return state


class ConstantOutput(_Geometry):
    """A conv or linear layer all of whose input channels were removed: returns its bias (zeros
    without one) at every position, in the shape the layer would return.

    Args:
        out_channels: the layer's output channels.
        bias: the layer's bias (kept as a trainable parameter), or None.
    """

    def __init__(self, out_channels: int, bias: torch.Tensor | None, **geometry) -> None:
        super().__init__(**geometry)
        self.out_channels = int(out_channels)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        # without a bias, a zero per channel: what later cuts of the outputs slice (not saved)
        self.register_buffer("zero", torch.zeros(out_channels) if bias is None else None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = self.out_shape(x, self.out_channels)
        if self.bias is None:
            return x.new_zeros(shape)
        view = [1] * len(shape)
        view[self.channel_dim(len(shape))] = -1
        # a new tensor each call (not an expanded view): callers may add to it in place
        return self.bias.view(view).expand(shape).clone()

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, bias={self.bias is not None}, " + super().extra_repr()


def is_standin(module: nn.Module) -> bool:
    """True for the layers this module puts in place of a removed branch."""
    return isinstance(module, (Emptied, ConstantOutput))


def _geometry(name: str, module: nn.Module) -> dict:
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        return dict(
            kernel_size=tuple(module.kernel_size),
            stride=tuple(module.stride),
            padding=module.padding,
            dilation=tuple(module.dilation),
            replaces=type(module).__name__,
        )
    if isinstance(module, nn.Linear):
        return dict(replaces="linear")
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return dict(replaces=type(module).__name__)
    raise SurgeryError(
        f"'{name}' ({type(module).__name__}) cannot lose all its channels: only convolutions, linear "
        "layers and batch norms in a removable branch can (see remove_branches)",
        module=name,
    )


def standin_for(name: str, module: nn.Module, keep: dict[str, torch.Tensor]) -> nn.Module:
    """The layer that replaces ``module`` when a role in ``keep`` keeps no position: an
    :class:`Emptied` when its outputs all go, a :class:`ConstantOutput` (its bias sliced to the
    kept outputs) when its inputs all go.

    Raises:
        SurgeryError: ``module`` is not a layer that can be replaced so.
    """
    geometry = _geometry(name, module)
    out = keep.get("out")
    if out is not None and out.numel() == 0:
        return Emptied(**geometry)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):  # BN's one role is "out"
        raise SurgeryError(f"'{name}': a batch norm has no input role to empty", module=name)
    bias = getattr(module, "bias", None)
    n_out = int(getattr(module, "out_channels", 0) or getattr(module, "out_features", 0))
    if out is not None:
        n_out = out.numel()
        bias = None if bias is None else bias.detach().index_select(0, out.to(bias.device))
    return ConstantOutput(n_out, None if bias is None else bias.detach(), **geometry)
