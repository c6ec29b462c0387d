"""Folding batch norms into the layer before them, for inference.

In eval mode a batch norm is an affine map per channel,
``y = gamma (x - mu) / sqrt(var + eps) + beta``. When it is the only reader of a convolution's
output, it merges into that convolution: with ``s = gamma / sqrt(var + eps)``,
``W' = W s`` (per output channel) and ``b' = (b - mu) s + beta`` (Jacob et al. 2018,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
eqs. 20-21; PyTorch's ``torch.nn.utils.fusion.fuse_conv_bn_eval`` does the arithmetic). The batch
norm becomes an ``nn.Identity``.

ONNX Runtime folds batch norms when it loads a model; PyTorch eager does not, and there a batch
norm costs about what the activation it normalises costs to read and write: 10-25% of a ResNet's
batch-1 CPU latency. Folding is the deploy step that makes eager timings comparable.

A removed branch's :class:`~prunekit.surgery.standins.ConstantOutput` folds too: the batch norm of
a constant is a constant, ``(c - mu) s + beta``, so the block it ends computes nothing but its
shortcut.

**Inference only.** The folded model computes the original's eval-mode outputs (checked on the
example inputs before returning); its batch norms' statistics and training-mode behaviour are
gone, so it is for deployment, never for fine-tuning.

>>> deployed = fold_batchnorm(model, x)
>>> batchnorm_pairs(model, x)
[('conv1', 'bn1'), ('layer1.0.conv1', 'layer1.0.bn1'), ...]
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
import torch.fx as fx
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils._pytree import tree_leaves

from prunekit.errors import ConfigError, EquivalenceError, PrunekitError, SurgeryError
from prunekit.graph.tracer import trace
from prunekit.inputs import InputsLike, as_example_inputs
from prunekit.submodules import submodule
from prunekit.surgery.apply import apply_changes
from prunekit.surgery.standins import ConstantOutput

__all__ = ["batchnorm_pairs", "fold_batchnorm", "FOLD_TOLERANCE"]

FOLD_TOLERANCE = 1e-4  # relative to each output's largest magnitude: folding reorders float32 sums

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _foldable_layer(module: nn.Module) -> bool:
    """A convolution computed by torch's own forward (a subclass may not override it), or a
    removed branch's constant standing for one; without hooks."""
    if _hooked(module):
        return False
    if isinstance(module, ConstantOutput):
        return bool(module.kernel_size)
    return any(isinstance(module, conv) and type(module).forward is conv.forward for conv in _CONVS)


def _foldable_norm(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not _hooked(module)
        and module.running_mean is not None
        and module.running_var is not None
    )


def _pairs_in(graph: fx.Graph, root: nn.Module) -> list[tuple[str, str]]:
    calls = Counter(str(n.target) for n in graph.nodes if n.op == "call_module")
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or calls[str(node.target)] != 1 or node.kwargs or len(node.args) != 1:
            continue
        norm = submodule(root, str(node.target))
        src = node.args[0]
        if not _foldable_norm(norm) or not isinstance(src, fx.Node) or src.op != "call_module":
            continue
        layer = submodule(root, str(src.target))
        if calls[str(src.target)] != 1 or len(src.users) != 1 or not _foldable_layer(layer):
            continue
        channels = layer.out_channels
        if channels == norm.num_features:
            pairs.append((str(src.target), str(node.target)))
    return pairs


def batchnorm_pairs(model: nn.Module, example_inputs: InputsLike, *, tracer: str = "fx") -> list[tuple[str, str]]:
    """``(layer, batch norm)`` names, in graph order: each batch norm (with running statistics)
    whose only input is the output of a convolution (or a removed branch's constant), that output
    read by nothing else and each module called once.

    Args:
        model: the model (not modified).
        example_inputs: its inputs (any form of :mod:`prunekit.inputs`).
        tracer: "fx" (default) or "record" (what runs on the example inputs); the pairs come from
            module calls, which a ``torch.export`` graph does not keep.

    Raises:
        ConfigError: an unknown ``tracer``.
        TraceError: the model cannot be traced.
    """
    if tracer not in ("fx", "record"):
        raise ConfigError(f"tracer must be 'fx' or 'record' to find batch norms, but got {tracer!r}", module="tracer")
    inputs = as_example_inputs(example_inputs)
    was = model.training
    model.eval()
    try:
        traced = trace(model, inputs, tracer=tracer)
    finally:
        model.train(was)
    return _pairs_in(traced.graph, model)


@torch.no_grad()
def _folded(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """``layer`` with ``norm`` (a batch norm with running statistics, eval mode) folded in."""
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm):
        raise SurgeryError(f"cannot fold a {type(norm).__name__}: not a batch norm")
    mean, var = norm.running_mean, norm.running_var
    if not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor):
        raise SurgeryError(f"{type(norm).__name__} has no running statistics to fold")
    if isinstance(layer, ConstantOutput):
        scale = torch.rsqrt(var + norm.eps)
        if isinstance(norm.weight, torch.Tensor):
            scale = scale * norm.weight
        bias = layer.bias if layer.bias is not None else torch.zeros_like(mean)
        shift = norm.bias if isinstance(norm.bias, torch.Tensor) else torch.zeros_like(mean)
        return ConstantOutput(layer.out_channels, (bias - mean) * scale + shift, **layer.geometry())
    if not isinstance(layer, nn.modules.conv._ConvNd):
        raise SurgeryError(f"cannot fold a {type(norm).__name__} into a {type(layer).__name__}")
    return fuse_conv_bn_eval(layer.eval(), norm.eval())


def _worst_difference(expected: object, got: object, where: str) -> float:
    e_all = [t for t in tree_leaves(expected) if isinstance(t, torch.Tensor)]
    g_all = [t for t in tree_leaves(got) if isinstance(t, torch.Tensor)]
    if len(e_all) != len(g_all):
        raise EquivalenceError(f"{where}: the folded model returns {len(g_all)} tensors, not {len(e_all)}")
    worst = 0.0
    for i, (e, g) in enumerate(zip(e_all, g_all)):
        if e.shape != g.shape or not e.is_floating_point():
            if e.shape != g.shape or not torch.equal(e, g):
                raise EquivalenceError(f"{where}: output {i} of the folded model differs from the model's")
            continue
        diff = (e.double() - g.double()).abs().max().item() if e.numel() else 0.0
        bound = FOLD_TOLERANCE * max(e.double().abs().max().item() if e.numel() else 0.0, 1.0)
        if not diff <= bound:
            raise EquivalenceError(
                f"{where}: output {i} of the folded model differs from the model's by {diff:.3g} "
                f"(allowed {bound:.3g}); a batch norm was folded into a layer it does not normalise",
                module=where,
            )
        worst = max(worst, diff)
    return worst


def fold_batchnorm(
    model: nn.Module, example_inputs: InputsLike, *, inplace: bool = False, tracer: str = "fx"
) -> nn.Module:
    """The model in eval mode with every batch norm of :func:`batchnorm_pairs` folded into its
    layer and replaced by ``nn.Identity``; a copy unless ``inplace``.

    The folded model's outputs are compared with the model's (eval mode) on ``example_inputs``
    before it is returned. Inference only: see the module docstring.

    Raises:
        ConfigError: an unknown ``tracer``.
        TraceError: the model cannot be traced.
        EquivalenceError: the folded model does not compute what the model computes (``model``
            is then unchanged, also with ``inplace``).
        SurgeryError: a layer could not be folded (the model is unchanged).
    """
    inputs = as_example_inputs(example_inputs)
    pairs = batchnorm_pairs(model, inputs, tracer=tracer)
    target = model if inplace else copy.deepcopy(model)
    was = model.training
    model.eval()
    target.eval()
    try:
        with torch.no_grad():
            expected = inputs.call(model)
        changes = []
        for layer_name, norm_name in pairs:
            try:
                folded = _folded(submodule(target, layer_name), submodule(target, norm_name))
            except PrunekitError:
                raise
            except Exception as exc:  # torch's fusion refused: name the pair, change nothing
                raise SurgeryError(
                    f"cannot fold '{norm_name}' into '{layer_name}': {type(exc).__name__}: {exc}", module=layer_name
                ) from exc
            for name, new in ((layer_name, folded), (norm_name, nn.Identity())):
                parent, _, attr = name.rpartition(".")
                changes.append((submodule(target, parent), attr, new))

        def check() -> None:
            with torch.no_grad():
                _worst_difference(expected, inputs.call(target), type(model).__name__)

        apply_changes(changes, verify=check, subject="the folded model")
    finally:
        model.train(was)
        if inplace and was:
            target.eval()  # the folded model is for inference: it stays in eval mode
    return target
