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


def output_layers(graph, root_types: tuple) -> list[nn.Module]:
    """The conv/linear layers of a Torch-Pruning ``DependencyGraph`` whose output reaches a model
    output without passing through another conv/linear layer: the layers a user lists in
    ``ignored_layers`` (as Torch-Pruning's examples list the classifier and the detection heads)
    so that pruning keeps the output's shape. The graph is traced backwards from the outputs, so a
    node with no successor produces one."""
    found = []
    for module, node in graph.module2node.items():
        if not isinstance(module, root_types):
            continue
        stack, seen = [node], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n is not node and isinstance(n.module, root_types):
                continue  # mixed again before any output
            if not n.outputs:
                found.append(module)
                break
            stack.extend(n.outputs)
    return found


def tp_prune_(
    model: nn.Module,
    x: torch.Tensor | list | tuple,
    *,
    ratio: float = 0.5,
    num_classes: int = 1000,
    forward_fn=None,
    ignore_outputs: bool = False,
) -> dict:
    """Prunes ``model`` in place with Torch-Pruning; returns the graph-build and step seconds.

    ``forward_fn`` (Torch-Pruning's own argument) calls the model on ``x`` when ``x`` is not one
    tensor; ``ignore_outputs`` adds every layer that produces a model output (``output_layers``)
    to ``ignored_layers``. The answer also holds ``groups`` (the groups Torch-Pruning's graph
    forms with a conv/linear root, none ignored) and ``pruned_groups`` (the groups it pruned)."""
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
        forward_fn=forward_fn,
    )
    if ignore_outputs:  # the same list as passing them to the constructor: it only copies it
        for layer in output_layers(pruner.DG, tuple(pruner.root_module_types)):
            pruner.ignored_layers.extend(layer.modules())
    groups = sum(1 for _ in pruner.DG.get_all_groups(root_module_types=pruner.root_module_types))
    t1 = time.perf_counter()
    pruned_groups = 0
    for group in pruner.step(interactive=True):  # step() does the same, without the count
        group.prune()
        pruned_groups += 1
    if isinstance(model, VisionTransformer):
        model.hidden_dim = model.conv_proj.out_channels
    t2 = time.perf_counter()
    for name, p in model.named_parameters():
        p.requires_grad_(trainable.get(name, True))
    return {"graph_s": t1 - t0, "step_s": t2 - t1, "groups": groups, "pruned_groups": pruned_groups}
