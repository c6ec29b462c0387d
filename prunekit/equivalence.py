"""The equivalence check: a pruned model computes what the zeroed-channel original computes.

The oracle is a copy of the original model in which every removed channel is zeroed at the
inputs of the layers that consume it (a forward pre-hook on each layer whose input channels
shrank; per-channel layers such as BatchNorm or depthwise convs need none, since a zeroed
channel never reaches a mixing layer). It shares no code with the surgery, so it checks it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils._pytree import tree_leaves

from prunekit.checks import check_arity, check_module
from prunekit.errors import ConfigError, EquivalenceError
from prunekit.inputs import ExampleInputs, InputsLike, as_example_inputs
from prunekit.modes import training_flags
from prunekit.report import PruneReport
from prunekit.rules.base import get_rule

__all__ = ["EquivalenceResult", "check_equivalence", "assert_equivalent", "zeroed_original", "boundary_layers"]


@dataclass(frozen=True)
class EquivalenceResult:
    """Outcome of :func:`check_equivalence`.

    Attributes:
        ok: every compared tensor is within ``tol`` times its own largest magnitude, and every
            output of both models is finite.
        max_error: largest absolute difference over all outputs (NaN when an output is not
            finite, inf when the outputs differ in number or shape).
        scale: largest absolute value of the oracle's outputs (at least 1e-6).
        tol: the relative tolerance used.
    """

    ok: bool
    max_error: float
    scale: float
    tol: float

    def __bool__(self) -> bool:
        return self.ok


def _zeroing_hook(rule, keep: torch.Tensor):
    """A forward pre-hook that zeroes every input channel not in ``keep``."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        dim = rule.input_dim(module, x.ndim) % x.ndim
        mask = torch.zeros(x.shape[dim], dtype=x.dtype, device=x.device)
        mask[keep.to(x.device)] = 1
        shape = [1] * x.ndim
        shape[dim] = -1
        return (x * mask.view(shape),) + tuple(args[1:])

    return hook


def zeroed_original(original: nn.Module, report: PruneReport) -> nn.Module:
    """A copy of ``original`` with the removed channels zeroed where they are consumed."""
    oracle = copy.deepcopy(original)
    names = {n for n, _ in oracle.named_modules()}
    for name, roles in report.kept.items():
        if name not in names:
            raise ConfigError(
                f"report: names layer {name!r}, which {type(original).__name__} does not have; "
                "is the report from another model?",
                module=name,
            )
        if "in" not in roles:
            continue
        module = oracle.get_submodule(name)
        rule = get_rule(type(module))
        if rule is None or not rule.mixes_inputs(module):
            continue
        keep = torch.as_tensor(roles["in"], dtype=torch.long)
        module.register_forward_pre_hook(_zeroing_hook(rule, keep))
    return oracle


def boundary_layers(report: PruneReport) -> list[str]:
    """The layers a prune touched whose outputs keep their size: the readers at the edge of the
    cut groups (a detector's head convs, a classifier's first Linear). Their outputs are
    comparable between the pruned model and the oracle, whatever follows them (NMS, top-k)."""
    return [r.name for r in report.layers if r.out_before == r.out_after and r.in_before != r.in_after]


def _outputs(model: nn.Module, inputs: ExampleInputs, at: Sequence[str], model_outputs: bool) -> list[Any]:
    """The model's output leaves (when ``model_outputs``), then the output leaves of each module
    in ``at``, in order."""
    seen: dict[str, list[Any]] = {name: [] for name in at}
    handles = [
        model.get_submodule(name).register_forward_hook(lambda m, a, out, n=name: seen[n].extend(tree_leaves(out)))
        for name in at
    ]
    try:
        out = inputs.call(model)  # runs the hooks either way
        leaves = tree_leaves(out) if model_outputs else []
    finally:
        for h in handles:
            h.remove()
    return leaves + [v for name in at for v in seen[name]]


@torch.no_grad()
def check_equivalence(
    original: nn.Module,
    pruned: nn.Module,
    example_inputs: InputsLike,
    report: PruneReport,
    *,
    tol: float = 1e-5,
    at: Sequence[str] | str | None = "auto",
    model_outputs: bool = True,
) -> EquivalenceResult:
    """Compares ``pruned(x)`` with the zeroed-channel ``original(x)`` in eval mode.

    Args:
        original: the model as it was before pruning (not modified).
        pruned: the pruned model.
        example_inputs: inputs to compare on (any form of :mod:`prunekit.inputs`).
        report: the prune report (its ``kept`` indices say what was removed).
        tol: tolerance relative to the largest magnitude of each compared tensor.
        at: module names whose outputs are compared too (forward hooks), besides the model's:
            ``"auto"`` (default) takes :func:`boundary_layers`, so a detector is compared on its
            heads' raw outputs, before post-processing that is not a continuous function of the
            weights (NMS can return nothing on an untrained model); ``None`` compares the model
            outputs only.
        model_outputs: compare the model's own outputs too (default). ``False`` compares only the
            outputs of the modules in ``at``: for a detector whose post-processing (top-k, NMS)
            orders near-tied scores, so that a rounding-level difference upstream swaps two
            boxes in its output (SSD on random weights), compare the heads' raw outputs only.

    Raises:
        ConfigError: ``at`` names a module the model lacks, or ``model_outputs=False`` with
            nothing in ``at`` to compare.
    """
    inputs = as_example_inputs(example_inputs)
    check_module(original, argument="original")
    check_module(pruned, argument="pruned")
    check_arity(pruned, inputs)
    oracle = zeroed_original(original, report).eval()  # checks that the report fits the model
    names = boundary_layers(report) if at == "auto" else [at] if isinstance(at, str) else list(at or [])
    for name in names:
        if name not in dict(pruned.named_modules()):
            raise ConfigError(f"at: {name!r} is not a module of {type(pruned).__name__}", module="at")
    if not model_outputs and not names:
        raise ConfigError(
            f"model_outputs=False compares only the modules in at, but got at={at!r}, which names none",
            module="model_outputs",
        )
    with training_flags(pruned, False):
        expected = _outputs(oracle, inputs, names, model_outputs)
        got = _outputs(pruned, inputs, names, model_outputs)
    if len(expected) != len(got):
        return EquivalenceResult(False, float("inf"), 1e-6, tol)
    return _compare(expected, got, tol)


def _compare(expected: list[Any], got: list[Any], tol: float) -> EquivalenceResult:
    """Each tensor pair within ``tol`` of its own largest magnitude; the worst error overall."""
    err, scale, ok = 0.0, 1e-6, True
    for e, g in zip(expected, got):
        if not isinstance(e, torch.Tensor):
            continue
        if not isinstance(g, torch.Tensor) or e.shape != g.shape:
            return EquivalenceResult(False, float("inf"), scale, tol)
        if not e.numel():
            continue
        # a non-finite output is never "equal": max() would silently skip a NaN difference
        if not (bool(torch.isfinite(e).all()) and bool(torch.isfinite(g).all())):
            return EquivalenceResult(False, float("nan"), scale, tol)
        e_err, e_scale = float((e.float() - g.float()).abs().max()), max(float(e.float().abs().max()), 1e-6)
        ok = ok and e_err <= tol * e_scale
        err, scale = max(err, e_err), max(scale, e_scale)
    return EquivalenceResult(ok, err, scale, tol)


def assert_equivalent(
    original: nn.Module, pruned: nn.Module, example_inputs: InputsLike, report: PruneReport, **options: Any
) -> EquivalenceResult:
    """Like :func:`check_equivalence` (``options``: its ``tol`` and ``at``) but raises
    :class:`EquivalenceError` when not equivalent."""
    res = check_equivalence(original, pruned, example_inputs, report, **options)
    if not res.ok:
        if res.max_error != res.max_error:
            raise EquivalenceError(
                "an output of the pruned model or of the zeroed-channel original is NaN or inf; "
                "prunekit.checks.check_finite(model) names the tensor",
                module=type(pruned).__name__,
            )
        raise EquivalenceError(
            f"pruned model differs from the zeroed-channel original by {res.max_error:.3g} "
            f"(output scale {res.scale:.3g}, tolerance {res.tol:g} relative)",
            module=type(pruned).__name__,
        )
    return res
