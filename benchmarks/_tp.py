"""Torch-Pruning's documented recipe for torchvision models, and its installed version.

Torch-Pruning (Fang et al. 2023, "DepGraph: Towards Any Structural Pruning", CVPR) is imported
only here and only when a benchmark asks for it: it is not a dependency of prunekit and lives in
the benchmark environment (``bash benchmarks/setup_env.sh`` creates ``.venv-bench``).

The recipe follows Torch-Pruning's own ``examples/torchvision_models/torchvision_pruning.py``:
a ``MetaPruner`` (``MagnitudePruner`` is the same class) with ``GroupMagnitudeImportance(p=1)``
(L1), local pruning at ``pruning_ratio``, the classifier head ignored (``nn.Linear`` with
``out_features == num_classes``), ``round_to = num_heads`` for a ViT (its attention needs it) and
``model.hidden_dim`` updated after pruning (torchvision's ViT reads it in ``forward``).
"""

from __future__ import annotations

import time
from importlib import metadata

import torch
import torch.nn as nn

__all__ = ["tp_version", "tp_prune_"]


def tp_version() -> str | None:
    """The installed torch-pruning distribution version, or None when it is not installed."""
    try:
        return metadata.version("torch-pruning")
    except metadata.PackageNotFoundError:
        return None


def tp_prune_(model: nn.Module, x: torch.Tensor, *, ratio: float = 0.5, num_classes: int = 1000) -> dict:
    """Prunes ``model`` in place with Torch-Pruning; returns the graph-build and step seconds."""
    import torch_pruning as tp  # the benchmark environment only
    from torchvision.models.vision_transformer import VisionTransformer

    t0 = time.perf_counter()
    ignored = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    round_to = model.encoder.layers[0].num_heads if isinstance(model, VisionTransformer) else None
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(True)  # as Torch-Pruning's example does
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs=x,
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=ratio,
        global_pruning=False,
        ignored_layers=ignored,
        round_to=round_to,
    )
    t1 = time.perf_counter()
    pruner.step()
    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels
    t2 = time.perf_counter()
    for name, p in model.named_parameters():
        p.requires_grad_(trainable.get(name, True))
    return {"graph_s": t1 - t0, "step_s": t2 - t1}
