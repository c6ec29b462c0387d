"""Model size and cost: parameters and MACs (counted by ``torch.utils.flop_counter``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from prunekit._batch import as_inputs
from prunekit.checks import check_arity, check_module
from prunekit.modes import training_flags

__all__ = ["count_params", "count_macs", "macs_per_module"]


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def macs_per_module(
    model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]
) -> tuple[int, dict[str, int]]:
    """Total MACs of one eval-mode forward, and MACs per module qualified name.

    MACs are FLOPs / 2 as counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which
    counts matmuls and convolutions (element-wise ops are not counted). ``example_inputs`` is a
    Tensor or a tuple of Tensors, as for :func:`prunekit.prune_`; every module's own train/eval
    flag is restored afterwards.
    """
    inputs = as_inputs(example_inputs)
    check_module(model)
    check_arity(model, inputs)
    counter = FlopCounterMode(display=False)
    with training_flags(model, False), torch.no_grad(), counter:
        model(*inputs)
    per: dict[str, int] = {}
    root = type(model).__name__
    for name, counts in counter.get_flop_counts().items():
        if name == "Global":
            continue
        qual = name[len(root) + 1 :] if name.startswith(root + ".") else ("" if name == root else name)
        per[qual] = int(sum(counts.values())) // 2
    return int(counter.get_total_flops()) // 2, per


def count_macs(model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> int:
    """Total MACs of one eval-mode forward on ``example_inputs``."""
    return macs_per_module(model, example_inputs)[0]
