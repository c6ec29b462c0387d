"""Model size and cost: parameters and MACs (counted by ``torch.utils.flop_counter``)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from prunekit.checks import check_arity, check_module
from prunekit.inputs import as_example_inputs
from prunekit.modes import attention_decomposed, training_flags

__all__ = ["count_params", "count_macs", "macs_per_module"]


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once), as
    ``sum(p.numel() for p in model.parameters())`` counts them, read off the modules'
    ``_parameters`` tables (``parameters()`` builds a generator per module)."""
    return sum({id(p): p.numel() for m in model.modules() for p in m._parameters.values() if p is not None}.values())


def macs_per_module(model: nn.Module, example_inputs: Any) -> tuple[int, dict[str, int]]:
    """Total MACs of one eval-mode forward, and MACs per module qualified name.

    MACs are FLOPs / 2 as counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which
    counts matmuls and convolutions (element-wise ops are not counted). ``example_inputs`` takes
    every form :func:`prunekit.prune_` takes (a Tensor, a tuple of arguments, a list argument, a
    dict of keyword arguments; :mod:`prunekit.inputs`); every module's own train/eval flag is
    restored afterwards.
    """
    inputs = as_example_inputs(example_inputs)
    check_module(model)
    check_arity(model, inputs)
    counter = FlopCounterMode(display=False)
    # not under no_grad: FlopCounterMode's module tracker hooks the gradient of every tensor
    # argument that requires grad, which fails for a parameter passed to a submodule while
    # grad is off (timm pit_s_224, cait_s24_224: "Expected gradient function to be set")
    with training_flags(model, False), attention_decomposed(), counter:
        inputs.call(model)
    per: dict[str, int] = {}
    root = type(model).__name__
    for name, counts in counter.get_flop_counts().items():
        if name == "Global":
            continue
        qual = name[len(root) + 1 :] if name.startswith(root + ".") else ("" if name == root else name)
        per[qual] = int(sum(counts.values())) // 2
    return int(counter.get_total_flops()) // 2, per


def count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Total MACs of one eval-mode forward on ``example_inputs``."""
    return macs_per_module(model, example_inputs)[0]
