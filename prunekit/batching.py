"""Example inputs at another batch size: the first sample repeated ``n`` times."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prunekit.errors import ExampleInputError

__all__ = ["as_inputs", "with_batch"]


def as_inputs(example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``example_inputs`` as a non-empty tuple of tensors that all have a batch dimension."""
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    if not inputs:
        raise ExampleInputError("example_inputs is empty: give a Tensor or a tuple of Tensors", module="example_inputs")
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == 0:
            what = type(x).__name__ if not isinstance(x, torch.Tensor) else f"a tensor of shape {list(x.shape)}"
            raise ExampleInputError(
                f"example_inputs[{i}] must be a tensor with a non-empty batch dimension, but got {what}",
                module="example_inputs",
            )
    return inputs


def with_batch(example_inputs: torch.Tensor | Sequence[torch.Tensor], n: int) -> tuple[torch.Tensor, ...]:
    """The inputs with batch size ``n``: the first sample of each, repeated (a contiguous copy)."""
    return tuple(x[:1].expand(n, *x.shape[1:]).contiguous() for x in as_inputs(example_inputs))
