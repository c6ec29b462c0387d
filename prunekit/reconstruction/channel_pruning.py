"""``channel_prune_``: choose channels by reconstruction, group by group, then cut for real.

The driver of He, Zhang & Sun 2017 ("Channel Pruning for Accelerating Very Deep Neural
Networks", ICCV 2017, sec. 3.3) over prunekit's coupled groups. For each prunable group, in the
forward order of its consumers (the layers whose input channels it is):

1. sample the consumers' input rows from the model pruned SO FAR and read the ORIGINAL model's
   outputs at the same points (so upstream errors are compensated, not accumulated);
2. choose the channels to remove: LASSO (:mod:`.lasso`), ThiNet's greedy order (:mod:`.thinet`),
   or any registered criterion scored on the original model (``"l1"`` + refit is Distiller's
   ``FMReconstructionChannelPruner``). Locks and balanced cells are honoured by
   :func:`~prunekit.surgery.selection.select_channels`;
3. mask the group (its producers, BatchNorms, residual partners and every consumer lose the
   channels, exactly as the final cut will do), then refit each consumer by least squares
   (:mod:`.refit`) to the original outputs.

When every group is done, one plan removes all chosen channels physically (transactional).

A group read by several consumers (a residual stream) is selected jointly: the consumers'
regression problems are stacked, each weighed by its relative error
(:mod:`.contributions`), and each consumer is then refit on its own. A group with a consumer that
cannot be linearised (grouped or 3-d conv, ConvTranspose...) is chosen by ``fallback`` (weight
criterion) and its linearisable consumers are still refit; the log says which and why. Groups
whose removal is not exactly zeroing (GroupNorm or LayerNorm across channels) are left whole.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria import Criterion, get_criterion
from prunekit.criteria.data_driven import evaluating
from prunekit.engine import (
    PruneOptions,
    build_criterion,
    build_report,
    candidates,
    check_model_options,
    report_config,
    resolve_options,
    search_sparsity,
    snapshot,
)
from prunekit.engine.options import round_multiple
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph, as_input_tuple
from prunekit.graph.groups import Group
from prunekit.masks import ChannelMasks, masks_for_plan
from prunekit.metrics import macs_per_module
from prunekit.reconstruction import sampling
from prunekit.reconstruction.contributions import Problem, contribution_gram
from prunekit.reconstruction.lasso import lasso_scores
from prunekit.reconstruction.refit import refit_, relative_error
from prunekit.reconstruction.thinet import thinet_scores
from prunekit.report import LayerReconstruction, ReconstructionReport
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["channel_prune_", "METHODS"]

log = logging.getLogger(__name__)
METHODS = ("lasso", "thinet")


def execution_order(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, int]:
    """Module name -> index of its first call in one forward."""
    order: dict[str, int] = {}

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: tuple) -> None:
            order.setdefault(name, len(order))

        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in model.named_modules() if n]
    try:
        with evaluating(model), torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return order


def _consumers(model: nn.Module, group: Group) -> dict[str, np.ndarray]:
    """Consumer name -> per input position, the group channel it holds (-1 for other groups)."""
    out: dict[str, np.ndarray] = {}
    for m in group.members:
        if m.role != "in":
            continue
        module = model.get_submodule(m.module)
        w = getattr(module, "weight", None)
        size = int(w.shape[1]) * int(getattr(module, "groups", 1)) if isinstance(w, torch.Tensor) else 0
        chan = out.setdefault(m.module, np.full(max(size, int(m.positions.max()) + 1), -1, dtype=np.int64))
        chan[m.positions] = m.channels
    return out


def _live(masks: dict[str, torch.Tensor], name: str, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the features and output rows of ``module`` not masked so far."""
    w = sampling.weight_matrix(module)
    mask = masks.get(f"{name}.weight")
    if mask is None:
        return torch.arange(w.shape[1]), torch.arange(w.shape[0])
    m = mask.reshape(w.shape[0], -1)
    return torch.nonzero(m.amax(0) > 0).flatten(), torch.nonzero(m.amax(1) > 0).flatten()


def _problem(
    name: str, module: nn.Module, chan_of_pos: np.ndarray, inputs: torch.Tensor, y: torch.Tensor, masks: dict
) -> Problem:
    feats, outs = _live(masks, name, module)
    w = sampling.weight_matrix(module).detach().float()[outs]
    fc = chan_of_pos[sampling.feature_positions(module)]
    target = y[:, outs].clone()
    bias = sampling.bias_of(module)
    if bias is not None:
        target -= bias.detach().float()[outs]
    other = torch.as_tensor(np.nonzero(fc < 0)[0])
    if other.numel():
        target -= inputs[:, other] @ w[:, other].T
    return Problem(name, inputs, w, target, fc)


def _check_method(method: object) -> Criterion | None:
    if isinstance(method, str) and method in METHODS:
        return None
    if isinstance(method, (str, Criterion)):
        return get_criterion(method)
    raise ConfigError(f"method must be 'lasso', 'thinet' or a criterion, but got {method!r}", module="method")


@dataclass
class _Run:
    """The state one ``channel_prune_`` call shares between groups."""

    model: nn.Module
    original: nn.Module
    graph: DependencyGraph
    batches: list[Any]
    sampler: sampling.RowSampler
    targets: dict[str, torch.Tensor]
    consumers: dict[int, dict[str, np.ndarray]]
    crit: Criterion | None
    fallback: Criterion
    method: str | Criterion
    label: str
    refit: bool
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: list[LayerReconstruction] = field(default_factory=list)


def channel_prune_(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    options: PruneOptions | None = None,
    *,
    calibration: Iterable[Any],
    method: str | Criterion = "lasso",
    refit: bool = True,
    num_samples: int = 4096,
    num_batches: int = 8,
    fallback: str | Criterion = "l1",
    seed: int = 0,
    **kwargs: Any,
) -> ReconstructionReport:
    """Removes channels from ``model`` in place, chosen and compensated by feature-map reconstruction.

    Per group (see the module docstring), with ``Z_c`` channel ``c``'s contribution to the
    consumers' sampled outputs and ``Y`` the ORIGINAL outputs: LASSO keeps the non-zeros of
    ``argmin ||Y - sum_c beta_c Z_c||^2 + lambda ||beta||_1`` (``lambda`` raised until the count
    fits; He et al. 2017), ThiNet removes greedily ``argmin_c ||sum_{T+c} Z||^2`` (Luo et al.
    2017); then each consumer is refit, ``W' = argmin ||Y - A_kept W'^T||^2`` (``torch.linalg.lstsq``).

    Args:
        model: the model, pruned in place (a plain ``nn.Module`` of the same classes afterwards).
        example_inputs: a Tensor or tuple of Tensors for tracing.
        options: :class:`~prunekit.engine.PruneOptions` (keyword arguments override it): give
            ``sparsity`` (fraction of each prunable group's channels to remove) or
            ``target_macs`` (bisection, as in ``prune_``); ``ignore`` and ``round_to`` apply.
        calibration: a DataLoader or iterable of batches (a Tensor or ``(input, target, ...)``).
        method: "lasso", "thinet", or a criterion name / instance (scored on the original model).
        refit: refit the consumers by least squares (off: selection only).
        num_samples: sampled output points per layer (bounds memory: ``num_samples x features``).
        num_batches: calibration batches used (kept in memory); seed: seeds the point sampling.
        fallback: criterion for groups whose consumers cannot be linearised.

    Returns a :class:`ReconstructionReport`: a PruneReport plus each refit layer's relative error.

    Note:
        Local scope, exact groups only: plain L1 at the same ``sparsity`` removes as many
        channels. Only Conv2d (``groups=1``) and Linear consumers are linearised; the model takes
        one input tensor (``model(x)`` per batch). The original is held in memory while pruning.

    Raises:
        ConfigError, UnknownNameError, NoPrunableGroupError, SurgeryError (the model is restored).
    """
    opts = _local_options(resolve_options(options, **kwargs))
    crit = _check_method(method)
    fallback_crit = get_criterion(fallback)
    check_model_options(model, opts)
    batches = sampling.cache_batches(calibration, num_batches)
    sampler = sampling.RowSampler(num_samples=num_samples, num_batches=len(batches), seed=seed)
    inputs = as_input_tuple(example_inputs)
    graph = DependencyGraph(model, inputs, tracer=opts.tracer)
    before = snapshot(model, inputs)
    groups = candidates(graph, opts)
    for g in (g for g in graph.groups if g.prunable and not g.exact):
        log.info("group %d (%s) left whole: %s", g.id, ", ".join(sorted(g.modules())), g.reason)
    sparsity = _sparsity(model, graph, inputs, opts, before)
    run = _start(model, graph, inputs, groups, batches, sampler, crit, fallback_crit, method, refit)
    removed_all: dict[int, np.ndarray] = {}
    try:
        for g in sorted(groups, key=_forward_order(model, inputs, run.consumers)):
            n_remove = removal_count(g.size, sparsity, round_to=round_multiple(opts))
            if n_remove:
                removed_all[g.id] = _prune_group(run, g, n_remove)
        plan = make_plan(graph, removed_all)
        after = apply_plan(model, plan, verify=lambda: macs_per_module(model, inputs))
    except BaseException:
        model.load_state_dict(run.original.state_dict())
        raise
    config = {k: v for k, v in report_config(opts, None, sparsity).items() if k != "criterion"}
    config.update(method=run.label, refit=refit, num_samples=num_samples, num_batches=len(batches), seed=seed)
    config["fallback"] = getattr(fallback_crit, "name", str(fallback))
    report = build_report(
        model, plan, before, after, cls=ReconstructionReport, channels_total=sum(g.size for g in groups), config=config
    )
    report.reconstruction = run.rows  # type: ignore[attr-defined]
    if opts.target_macs is not None:
        report.config["realised"] = report.macs_ratio
    return report  # type: ignore[return-value]  # cls=ReconstructionReport


def _local_options(opts: PruneOptions) -> PruneOptions:
    """The options as channel pruning uses them: local scope, exact groups, no overrides."""
    opts.require_amount()
    for name in ("target_params", "target_latency"):
        if getattr(opts, name) is not None:
            raise ConfigError(f"channel_prune_ takes sparsity or target_macs, not {name}", module=name)
    return opts.replace(scope="local", exact_only=True, criterion="l1", overrides=())


def _sparsity(
    model: nn.Module, graph: DependencyGraph, inputs: tuple[Any, ...], opts: PruneOptions, before: Any
) -> float:
    """``opts.sparsity``, or the one that meets ``opts.target_macs`` (bisection with L1)."""
    if opts.target_macs is None:
        return float(opts.sparsity or 0.0)
    budget = opts.target_macs * before.macs
    return search_sparsity(
        model, graph, inputs, opts, key="target_macs", budget=budget, criterion=build_criterion(opts)
    )


def _start(
    model: nn.Module,
    graph: DependencyGraph,
    inputs: tuple[Any, ...],
    groups: list[Group],
    batches: list[Any],
    sampler: sampling.RowSampler,
    crit: Criterion | None,
    fallback: Criterion,
    method: str | Criterion,
    refit: bool,
) -> _Run:
    """Copies the original, finds each group's consumers and samples the original outputs."""
    original = copy.deepcopy(model)
    consumers = {g.id: _consumers(model, g) for g in groups}
    names = sorted(
        {n for c in consumers.values() for n in c if not sampling.unsupported_reason(model.get_submodule(n))}
    )
    targets = sampling.sample_outputs(original, names, batches, sampler) if refit or crit is None else {}
    label = method if isinstance(method, str) else getattr(method, "name", type(method).__name__)
    return _Run(model, original, graph, batches, sampler, targets, consumers, crit, fallback, method, label, refit)


def _forward_order(model: nn.Module, inputs: tuple[Any, ...], consumers: dict[int, dict[str, np.ndarray]]) -> Any:
    """A sort key: groups in the forward order of their first consumer."""
    order = execution_order(model, inputs)
    return lambda g: min((order.get(n, 1 << 30) for n in consumers[g.id]), default=1 << 30)


def _prune_group(run: _Run, g: Group, n_remove: int) -> np.ndarray:
    """Chooses ``n_remove`` channels of ``g``, masks them and refits its consumers; returns them."""
    model, consumers = run.model, run.consumers[g.id]
    bad = {n: r for n in consumers if (r := sampling.unsupported_reason(model.get_submodule(n)))}
    ok = [n for n in consumers if n not in bad and n in run.targets]
    samples = sampling.sample_inputs(model, ok, run.batches, run.sampler) if ok else {}
    probs = [
        _problem(n, model.get_submodule(n), consumers[n], samples[n], run.targets[n], run.masks)
        for n in ok
        if n in samples
    ]
    how = run.label
    free = ~g.locked
    if run.crit is None and probs and not bad:
        gram, lin = contribution_gram(probs, g.size)
        if run.method == "lasso":
            scores = lasso_scores(gram, lin, int(free.sum()) - n_remove, free=free)
        else:
            scores = thinet_scores(gram, free=free)
    else:
        use = run.crit or run.fallback
        if run.crit is None:
            why = "; ".join(f"{n}: {r}" for n, r in bad.items()) or "no consumer layer reads it"
            how = getattr(use, "name", "fallback")
            log.info("group %d: channels chosen by %s, not %s (%s)", g.id, how, run.method, why)
        scores = np.asarray(use.scores(run.original, g), dtype=np.float64)
    removed = select_channels(g, scores, n_remove)
    masks = run.masks
    for k, v in masks_for_plan(model, make_plan(run.graph, {g.id: removed})).items():
        masks[k] = masks[k] * v if k in masks else v
    ChannelMasks(make_plan(run.graph, {}), masks).apply_(model)
    for p in probs:
        feats, outs = _live(masks, p.name, model.get_submodule(p.name))
        module = model.get_submodule(p.name)
        if run.refit:
            before, after = refit_(module, p.inputs, run.targets[p.name], features=feats, outputs=outs)
        else:
            before, after = _masked_error(module, p.inputs, run.targets[p.name], feats, outs)
        run.rows.append(LayerReconstruction(p.name, g.id, how, len(feats), p.inputs.shape[1], before, after))
        log.info("%s: reconstruction error %.4f -> %.4f", p.name, before, after)
    ChannelMasks(make_plan(run.graph, {}), masks).apply_(model)
    return removed


def _masked_error(
    module: nn.Module, inputs: torch.Tensor, target: torch.Tensor, feats: torch.Tensor, outs: torch.Tensor
) -> tuple[float, float]:
    w = sampling.weight_matrix(module).detach()[outs][:, feats]
    bias = sampling.bias_of(module)
    b = bias.detach()[outs] if bias is not None else None
    err = relative_error(inputs[:, feats], w, b, target[:, outs])
    return err, err
