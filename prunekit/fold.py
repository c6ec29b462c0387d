"""Folding for inference: batch norms into the layer before them, and removed branches'
constants into the additions that read them.

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

**Removed branches** (``remove_branches``) keep their block's module calls: the stand-ins make a
tensor of zero channels and a constant, the norm after the constant runs on it, and the block adds
it to its shortcut. In eager PyTorch at batch 1 a CIFAR ResNet-56 block costs about 35 us so
(profiled), 0.6 ms of a 3.4 ms cut with 18 removed blocks; folded, the speed-up of that cut went
from 0.77 to 1.00 of its MAC reduction (``benchmarks/results/latency.md``, deployed columns).
:func:`fold_constants` traces the model with fx and evaluates each constant through the per-channel
layers that read it (batch norms in eval mode, activations, identities) once, at build time; where
the result is added to a tensor of the full shape, the addition reads a buffer of one value per
channel instead, and everything that only fed the constant is dropped (fx's dead-code
elimination). The block becomes ``act(x + c)``: constant folding, as an inference compiler does
it, for the constants that pruning makes.

>>> deployed = fold_constants(fold_batchnorm(model, x), x)
>>> batchnorm_pairs(model, x)
[('conv1', 'bn1'), ('layer1.0.conv1', 'layer1.0.bn1'), ...]
"""

from __future__ import annotations

import copy
import operator
from collections import Counter

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils._pytree import tree_leaves

from prunekit.errors import ConfigError, EquivalenceError, PrunekitError, SurgeryError
from prunekit.graph.tracer import trace
from prunekit.inputs import InputsLike, as_example_inputs
from prunekit.submodules import submodule
from prunekit.surgery.apply import apply_changes
from prunekit.surgery.standins import ConstantOutput

__all__ = ["batchnorm_pairs", "fold_batchnorm", "fold_constants", "FOLD_TOLERANCE"]

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


def _worst_difference(expected: object, got: object, where: str, what: str = "batch norm") -> float:
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
                f"(allowed {bound:.3g}); a {what} was folded into a layer it does not feed",
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


# per-channel layers a constant is evaluated through (exact types: a subclass may do more); a
# batch norm runs in eval mode, where it is an affine map per channel
_PER_CHANNEL: frozenset[type[nn.Module]] = frozenset(
    {nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Identity, nn.Dropout, nn.ReLU, nn.ReLU6}
    | {nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Hardswish, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh}
)
_ADDS = (operator.add, operator.iadd, torch.add)


def _shape(node: object) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _through_per_channel(gm: fx.GraphModule, node: fx.Node, value: torch.Tensor) -> tuple[fx.Node, torch.Tensor]:
    """Follows ``node``'s single readers while they are per-channel layers, evaluating ``value``
    (one value per channel, broadcastable) through each; the last node reached and its value."""
    while len(node.users) == 1:
        user = next(iter(node.users))
        if user.op != "call_module" or len(user.args) != 1 or user.kwargs:
            break
        module = gm.get_submodule(str(user.target))
        if type(module) not in _PER_CHANNEL or _hooked(module):
            break
        value = module(value.clone())  # a copy: an in-place activation must not touch a bias
        node = user
    return node, value


def _adds_to_full(node: fx.Node) -> bool:
    """Every reader of ``node`` adds it to another tensor of the same shape as the sum."""
    shape = _shape(node)
    for user in node.users:
        if user.op != "call_function" or user.target not in _ADDS or user.kwargs or len(user.args) != 2:
            return False
        other = user.args[1] if user.args[0] is node else user.args[0]
        if other is node or not isinstance(other, fx.Node) or not (_shape(other) == _shape(user) == shape):
            return False
    return bool(node.users)


def _inline_constants(gm: fx.GraphModule) -> None:
    """Replaces every foldable removed-branch constant (see the module docstring) by a buffer
    of one value per channel."""
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        module = gm.get_submodule(str(node.target))
        shape = _shape(node)
        if not isinstance(module, ConstantOutput) or _hooked(module) or shape is None:
            continue
        view = [1] * len(shape)
        view[module.channel_dim(len(shape))] = -1
        bias = module.bias if module.bias is not None else torch.zeros(module.out_channels)
        end, value = _through_per_channel(gm, node, bias.detach().view(view))
        if not _adds_to_full(end):
            continue
        name = f"_prunekit_constant_{folded}"
        gm.register_buffer(name, value.detach().clone())
        with gm.graph.inserting_after(end):
            constant = gm.graph.get_attr(name)
        for user in list(end.users):
            user.replace_input_with(end, constant)
            if user.target is operator.iadd and user.args[0] is constant:
                user.target = operator.add  # the buffer is not to be written: a new sum
        folded += 1


def fold_constants(model: nn.Module, example_inputs: InputsLike) -> fx.GraphModule:
    """An ``fx.GraphModule`` that computes ``model``'s eval-mode outputs with every removed
    branch's constant folded into the addition that reads it (see the module docstring); the
    model itself is not changed. Inference only.

    Args:
        model: the model (pruned with ``remove_branches``; without a removed branch the result
            computes the same graph).
        example_inputs: tensors passed positionally (the constants' shapes are propagated).

    Raises:
        ConfigError: inputs other than positional tensors.
        TraceError: the model cannot be traced with fx.
        SurgeryError: the traced graph fails on the example inputs.
        EquivalenceError: the result does not compute what the model computes.
    """
    inputs = as_example_inputs(example_inputs)
    if inputs.kwargs or not all(isinstance(a, torch.Tensor) for a in inputs.args):
        raise ConfigError(
            "fold_constants needs example inputs that are tensors passed positionally", module="example_inputs"
        )
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = inputs.call(model)
            target = copy.deepcopy(model).eval()
            traced = trace(target, inputs, tracer="fx")
            try:
                gm = fx.GraphModule(traced.root, traced.graph, type(model).__name__)
                ShapeProp(gm).propagate(*inputs.args)
                _inline_constants(gm)
                gm.graph.eliminate_dead_code()
                gm.recompile()
                got = gm(*inputs.args)
            except Exception as exc:  # the traced graph did not run as the model does: name it
                raise SurgeryError(
                    f"cannot fold the constants of {type(model).__name__}: its fx graph failed on the example "
                    f"inputs ({type(exc).__name__}: {exc}); deploy it without fold_constants",
                    module=type(model).__name__,
                ) from exc
            _worst_difference(expected, got, type(model).__name__, what="constant")
    finally:
        model.train(was)
    return gm.eval()
