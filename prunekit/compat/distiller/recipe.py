"""``DistillerRecipe``: runs a Distiller schedule file with prunekit's coupled groups.

Semantics (Distiller's, with coupling handled):

* At the start of an epoch, every pruner whose policy includes it **masks** channels: the listed
  layers' groups lose ``removal_count(original size, s)`` channels in total, ``s`` being the
  pruner's ``desired_sparsity`` or, for ``_AGP`` classes, Distiller's AGP value
  (:func:`~prunekit.schedules.functions.distiller_agp_sparsity`) over its policy's window.
  Channels masked earlier stay masked. Masks are re-applied after every optimizer step.
* Then every thinning extension (``FilterRemover``, ``ChannelRemover``, ``StructureRemover``)
  scheduled for the epoch **removes** the masked channels physically (Distiller runs its
  thinning at the first minibatch of the epoch, after the pruners). Without a thinning
  extension the removal happens in :meth:`finalize`.
* ``Filters`` pruning and ``Channels`` pruning cut the same coupled groups; they differ in which
  weights rank the channels (:mod:`prunekit.criteria.group_type`).
* When the listed layers share a group with unlisted ones (layers summed by a residual add,
  say), the choice is extended to the whole group and a message says so; with ``strict: true``
  it is an error naming the missing layers and the op that couples them.
* Element-wise pruners run as magnitude masks (:mod:`prunekit.schedules.elementwise`).
* ``FMReconstructionChannelPruner`` selects input channels by L1 and, at the thinning, refits the
  listed layers by least squares (:func:`prunekit.reconstruction.reconstruct_`) towards the model
  as it was before its masks, on the last calibration batches given.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.compat.distiller.regularizers import DistillerPenalty
from prunekit.compat.distiller.schema import DistillerSchedule, PolicySpec, PrunerSpec, parse_distiller
from prunekit.criteria import CRITERIA
from prunekit.criteria.group_type import score_group
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph, as_input_tuple
from prunekit.masks import ChannelMasks, masks_for_plan
from prunekit.metrics import count_params, macs_per_module
from prunekit.report import PruneReport
from prunekit.schedules._decisions import apply_decision_, decision_from_plan
from prunekit.compat.distiller.groups import (
    check_parameter,
    coupling_message,
    group_key,
    leader_scores,
    resolve_targets,
)
from prunekit.schedules.elementwise import (
    DENSE_NOTE,
    apply_weight_masks_,
    magnitude_mask,
    mask_sparsity,
    threshold_mask,
)
from prunekit.schedules.functions import distiller_agp_sparsity
from prunekit.schedules.recipe import Decision, Recipe, RecipeEvent, decision_from_dict, decision_to_dict
from prunekit.schedules.schedule_recipe import build_criterion
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["DistillerRecipe", "fm_reconstruction_hook"]

log = logging.getLogger(__name__)
STATE_FORMAT = "prunekit.distiller_recipe/1"
_FORCED = -1e300  # score that keeps an already-masked channel chosen


def fm_reconstruction_hook(
    model: nn.Module, original: nn.Module, calibration: Iterable[Any] | None, kept: Mapping, layers: Sequence[str]
) -> list[str]:
    """Refits ``layers`` of the thinned ``model`` towards ``original`` (FMReconstruction).

    The switch point between "reconstruct" and "select only": it calls
    :func:`prunekit.reconstruction.reconstruct_` and returns log lines; without calibration
    batches (or without :mod:`prunekit.reconstruction`) it warns that no reconstruction was done.
    """
    if calibration is None:
        line = "FMReconstructionChannelPruner: no calibration batches were given, so the weights were NOT reconstructed"
        log.warning(line)
        return [line]
    try:
        from prunekit.reconstruction import reconstruct_
    except ImportError:  # pragma: no cover - the package ships with prunekit
        line = "FMReconstructionChannelPruner: prunekit.reconstruction is unavailable; weights NOT reconstructed"
        log.warning(line)
        return [line]
    rows = reconstruct_(model, original, calibration, kept=kept, layers=list(layers))
    return [
        f"FMReconstruction: refit {r.name} (relative error {r.error_before:.4f} -> {r.error_after:.4f})" for r in rows
    ]


class DistillerRecipe(Recipe):
    """A :class:`Recipe` for a Distiller schedule (see the module docstring).

    Args:
        schedule: the parsed schedule (:func:`prunekit.compat.distiller.schema.parse_distiller`).
        num_batches: calibration batches that data-driven rankings (APoZ, mean activation,
            gradient) read.
    """

    def __init__(self, schedule: DistillerSchedule, *, num_batches: int = 4) -> None:
        self.schedule = schedule
        self.num_batches = num_batches
        self.lr_schedulers = schedule.lr_schedulers
        acting = [p for p in schedule.policies if p.kind in ("pruner", "extension", "regularizer")]
        self.num_epochs = max((max(p.epochs) + 1 for p in acting), default=1)
        self.thinning_epochs = sorted({e for p in schedule.policies if p.kind == "extension" for e in p.epochs})
        self.needs_data = any(
            getattr(CRITERIA.get(s.criterion), "needs_data", False) or s.reconstructs
            for s in schedule.pruners.values()
            if s.kind == "structured"
        )
        self.sizes: dict[str, int] = {}  # group key -> original size
        self.pending: dict[str, list[int]] = {}  # group key -> masked channels (current indices)
        self.masks: ChannelMasks | None = None
        self.weight_masks: dict[str, torch.Tensor] = {}
        self.decisions: list[Decision] = []
        self.told: set[str] = set()  # messages said once
        self._checked = False
        self._calibration: Iterable[Any] | None = None
        self._fm: tuple[nn.Module, list[str]] | None = None  # (model before FM masks, layers)
        self.penalty: DistillerPenalty | None = None  # the regularizers of the current epoch

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **options: Any) -> DistillerRecipe:
        """Parses and validates a Distiller schedule mapping."""
        return cls(parse_distiller(data), **options)

    def epoch_regularizer(self, epoch: int) -> DistillerPenalty | None:
        """The penalty of the regularizers whose policies include ``epoch`` (None if none);
        the pipeline adds it to the loss (:mod:`prunekit.compat.distiller.regularizers`)."""
        active = [p.instance for p in self.schedule.policies if p.kind == "regularizer" and epoch in p.epochs]
        specs = [self.schedule.regularizers[n] for n in dict.fromkeys(active)]
        self.penalty = DistillerPenalty(specs) if specs else None  # its threshold_criteria act per step
        return self.penalty

    # ------------------------------------------------------------------------------ helpers
    def _say(self, event: RecipeEvent, line: str, *, once: str | None = None, warn: bool = False) -> None:
        if once is not None:
            if once in self.told:
                return
            self.told.add(once)
        (log.warning if warn else log.info)(line)
        event.messages.append(line)

    def _check_names(self, model: nn.Module) -> None:
        """Every listed parameter exists (close names suggested), before anything is changed."""
        for spec in self.schedule.pruners.values():
            names = [(f"{spec.path}.weights[{i}]", w) for i, w in enumerate(spec.weights)]
            names += [(f"{spec.path}.levels.{k}", k) for k in spec.levels if k != "*"]
            names += [(f"{spec.path}.thresholds.{k}", k) for k in spec.thresholds if k != "*"]
            for where, name in names:
                check_parameter(model, name, where)
        self._checked = True

    @staticmethod
    def _sparsity(spec: PrunerSpec, policy: PolicySpec, epoch: int) -> float:
        if spec.agp:
            return distiller_agp_sparsity(
                epoch,
                initial=spec.initial,  # type: ignore[arg-type]
                final=spec.final,  # type: ignore[arg-type]
                start=policy.starting_epoch,  # type: ignore[arg-type]
                end=policy.ending_epoch,  # type: ignore[arg-type]
                frequency=policy.frequency,
            )
        return float(spec.desired_sparsity or 0.0)

    def _due(self, epoch: int, kind: str) -> list[tuple[PolicySpec, Any]]:
        table: Mapping[str, Any] = self.schedule.pruners if kind == "pruner" else self.schedule.extensions
        return [(p, table[p.instance]) for p in self.schedule.policies if p.kind == kind and epoch in p.epochs]

    # ------------------------------------------------------------------------------ hooks
    def on_epoch_begin(
        self,
        model: nn.Module,
        example_inputs: torch.Tensor | Sequence[torch.Tensor],
        epoch: int,
        *,
        calibration: Iterable[Any] | None = None,
    ) -> RecipeEvent:
        """Runs the pruners, then the thinning extensions, scheduled for ``epoch``."""
        if not self._checked:
            self._check_names(model)
        if calibration is not None:
            self._calibration = calibration
        event = RecipeEvent(epoch)
        due = self._due(epoch, "pruner")
        structured = [(p, s) for p, s in due if s.kind == "structured"]
        if structured:
            self._structured(model, example_inputs, epoch, structured, calibration, event)
        elementwise = [(p, s) for p, s in due if s.kind == "elementwise"]
        if elementwise:
            self._elementwise(model, epoch, elementwise, event)
        for _, ext in self._due(epoch, "extension"):
            self._thin(model, example_inputs, event, f"extension {ext.name} ({ext.cls}, {ext.thinning_func_str})")
        return event

    def _structured(self, model, example_inputs, epoch, due, calibration, event: RecipeEvent) -> None:
        graph = DependencyGraph(model, as_input_tuple(example_inputs))
        for policy, spec in due:
            for key in policy.args:
                self._say(event, f"{policy.path}.args.{key}: not used by prunekit", once=f"{policy.path}.{key}")
            s = self._sparsity(spec, policy, epoch)
            targets = resolve_targets(model, graph, spec)
            for t in targets:
                if not t.missing:
                    continue
                message = coupling_message(t, spec)
                if spec.strict:
                    raise ConfigError(
                        f"{spec.path}.weights: {message}: list them together with group_dependency: Leader "
                        "(or drop strict: true to extend the choice to the whole group)",
                        module=f"{spec.path}.weights",
                    )
                self._say(
                    event,
                    f"{spec.path}: {message}; the choice is extended to the whole group "
                    f"({', '.join(t.missing)} pruned too; strict: true makes this an error)",
                    once=f"{spec.path}:{group_key(t.group)}",
                )
            if spec.reconstructs and self._fm is None:
                self._fm = (copy.deepcopy(model), [])
            if spec.reconstructs and self._fm is not None:
                self._fm[1].extend(m for t in targets for m in t.listed if m not in self._fm[1])
            data = calibration if calibration is not None else self._calibration
            crit = build_criterion(
                spec.criterion, {**spec.criterion_options, **self._data_options(spec)}, data, where=spec.path
            )
            scores = {t.group.id: score_group(crit, model, t.group, group_type=spec.group_type) for t in targets}
            if spec.leader and len(targets) > 1:
                scores = leader_scores(scores, targets, spec)
            for t in targets:
                key = group_key(t.group)
                orig = self.sizes.setdefault(key, t.group.size)
                pend = self.pending.get(key, [])
                n = max(t.group.size - (orig - removal_count(orig, s)), len(pend))
                sc = np.array(scores[t.group.id], dtype=np.float64)
                sc[pend] = _FORCED
                self.pending[key] = select_channels(t.group, sc, n).tolist()
            self._say(event, f"epoch {epoch}: {spec.name} ({spec.cls}) masks {s:.4f} of {len(targets)} group(s)")
        removed = {g.id: np.asarray(self.pending[group_key(g)]) for g in graph.groups if group_key(g) in self.pending}
        plan = make_plan(graph, removed)
        self.masks = ChannelMasks(plan, masks_for_plan(model, plan))
        self.masks.apply_(model)
        decision = decision_from_plan(
            "mask", plan, epoch=epoch, pending=copy.deepcopy(self.pending), sizes=dict(self.sizes)
        )
        self._record(event, decision)

    def _data_options(self, spec: PrunerSpec) -> dict[str, Any]:
        return {"num_batches": self.num_batches} if getattr(CRITERIA.get(spec.criterion), "needs_data", False) else {}

    def _elementwise(self, model: nn.Module, epoch: int, due, event: RecipeEvent) -> None:
        params = dict(model.named_parameters())
        for policy, spec in due:
            if spec.cls == "AutomatedGradualPruner":
                s = self._sparsity(spec, policy, epoch)
                new = {w: magnitude_mask(params[w], s) for w in spec.weights}
            elif spec.cls == "SparsityLevelParameterPruner":
                new = {w: magnitude_mask(params[w], v) for w, v in self._expand(spec.levels, params).items()}
            else:
                new = {w: threshold_mask(params[w], v) for w, v in self._expand(spec.thresholds, params).items()}
            self.weight_masks.update(new)
            self._say(
                event,
                f"epoch {epoch}: {spec.name} ({spec.cls}) masks {mask_sparsity(new):.4f} of the weights of "
                f"{len(new)} parameter(s); {DENSE_NOTE}",
            )
        apply_weight_masks_(model, self.weight_masks)
        self._record(event, Decision("elementwise", weight_masks=dict(self.weight_masks), info={"epoch": epoch}))

    @staticmethod
    def _expand(values: dict[str, float], params: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """``'*'`` stands for every weight matrix (dim >= 2) not named explicitly."""
        out = {k: v for k, v in values.items() if k != "*"}
        if "*" in values:
            out.update({n: values["*"] for n, p in params.items() if p.dim() >= 2 and n not in out})
        return out

    def _thin(self, model: nn.Module, example_inputs: Any, event: RecipeEvent, why: str) -> None:
        if self.masks is None:
            return
        inputs = as_input_tuple(example_inputs)
        plan = self.masks.plan
        params_before, macs_before = count_params(model), macs_per_module(model, inputs)[0]
        apply_plan(model, plan)
        decision = decision_from_plan("physical", plan, thinning=why)
        report = PruneReport(
            kept=decision.module_keep,
            kept_params=decision.param_keep,
            params_before=params_before,
            params_after=count_params(model),
            macs_before=macs_before,
            macs_after=macs_per_module(model, inputs)[0],
            groups_pruned=len(plan.removed),
            channels_removed=int(sum(len(v) for v in plan.removed.values())),
            config={"thinning": why},
        )
        self._after_thinning(model)
        event.rebuild_optimizer = True
        event.reports.append(report)
        self._say(
            event,
            f"{why}: removed {report.channels_removed} masked channels; params {params_before} -> "
            f"{report.params_after}, MACs {macs_before} -> {report.macs_after}",
        )
        if self._fm is not None:
            original, layers = self._fm
            for line in fm_reconstruction_hook(model, original, self._calibration, decision.module_keep, layers):
                self._say(event, line, warn="NOT" in line)
            self._fm = None
        self._record(event, decision)

    def _after_thinning(self, model: nn.Module) -> None:
        """Masks are spent; element-wise masks follow the new shapes (their zeros were sliced)."""
        self.masks, self.pending = None, {}
        params = dict(model.named_parameters())
        for name, mask in list(self.weight_masks.items()):
            if params[name].shape != mask.shape:
                self.weight_masks[name] = (params[name].detach() != 0).float().cpu()

    def _record(self, event: RecipeEvent, decision: Decision) -> None:
        self.decisions.append(decision)
        event.decisions.append(decision)
        event.changed = True

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Re-applies the structured and element-wise masks."""
        if self.masks is not None:
            self.masks.apply_(model)
        if self.weight_masks:
            apply_weight_masks_(model, self.weight_masks)
        if self.penalty is not None:
            self.penalty.threshold_(model)

    def finalize(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> RecipeEvent:
        """Removes what is still masked (the schedule had no thinning after its last pruner)."""
        event = RecipeEvent(-1)
        self._thin(model, example_inputs, event, "finalize (no thinning extension after the last pruner)")
        if self.weight_masks:
            self._say(event, f"element-wise sparsity {mask_sparsity(self.weight_masks):.4f} kept: {DENSE_NOTE}")
        return event

    # ------------------------------------------------------------------------------ replay/state
    def replay(self, model: nn.Module, decision: Decision) -> None:
        """Applies ``decision`` to ``model`` and brings the recipe to where taking it left it."""
        masks = apply_decision_(model, decision)
        if decision.kind == "mask":
            self.masks = masks
            self.pending = {k: list(v) for k, v in decision.info.get("pending", {}).items()}
            self.sizes = {k: int(v) for k, v in decision.info.get("sizes", {}).items()}
        elif decision.kind == "physical":
            self._after_thinning(model)
            self._fm = None
        elif decision.kind == "elementwise":
            self.weight_masks = dict(decision.weight_masks)
        self._checked = True
        self.decisions.append(decision)

    def state_dict(self) -> dict[str, Any]:
        """Every decision taken so far; replay them on a fresh model to resume."""
        return {"format": STATE_FORMAT, "decisions": [decision_to_dict(d) for d in self.decisions]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Checks that the stored decisions were replayed (replay restores the state itself).

        Raises:
            ConfigError: not a DistillerRecipe state, or a different number of decisions replayed.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"state: not a {STATE_FORMAT} recipe state", module="state")
        stored = state.get("decisions", [])
        if len(self.decisions) != len(stored):
            raise ConfigError(
                f"state: {len(stored)} decisions stored but {len(self.decisions)} replayed; replay all of "
                "decisions_from_state(state) on a fresh model before load_state_dict",
                module="state",
            )
        if not self.decisions:
            self.decisions = [decision_from_dict(d) for d in stored]
