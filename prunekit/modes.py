"""Train/eval flags: switch a whole model to one mode and give every module its own flag back.

``model.train(was)`` is not a restore: it sets every submodule to the root's flag, so a user's
frozen BatchNorm (``.eval()`` inside a training model) would come back unfrozen. Every place
prunekit runs a model in eval mode (MACs, equivalence, export, latency, tracing) uses
:func:`training_flags` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn

__all__ = ["training_flags", "save_training_flags", "restore_training_flags", "attention_decomposed"]


def save_training_flags(model: nn.Module) -> dict[nn.Module, bool]:
    """Each module's own ``training`` flag, keyed by the module (shared modules appear once)."""
    return {m: m.training for m in model.modules()}


def restore_training_flags(flags: dict[nn.Module, bool]) -> None:
    """Sets each module's flag back to what :func:`save_training_flags` recorded."""
    for module, flag in flags.items():
        if module.training is not flag:  # Module.__setattr__ is slow: write only what changed
            module.training = flag


@contextlib.contextmanager
def training_flags(model: nn.Module, mode: bool | None = None) -> Iterator[nn.Module]:
    """Within the block every module has ``training == mode`` (unchanged if ``mode`` is None);
    afterwards, even on an exception, every module has its own flag back."""
    flags = save_training_flags(model)
    try:
        if mode is not None and any(flag is not mode for flag in flags.values()):
            model.train(mode)
        yield model
    finally:
        restore_training_flags(flags)


@contextlib.contextmanager
def attention_decomposed() -> Iterator[None]:
    """Turns off ``nn.MultiheadAttention``'s fused inference kernel for the duration, so that
    attention runs as its projections and ``scaled_dot_product_attention``: what MAC counting
    sees (the fused op is in no FLOP table, so a ViT's projections would count as zero), with
    or without gradients. Restores the setting afterwards."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):  # torch < 2.2: no switch to turn
        yield
        return
    was = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(was)
