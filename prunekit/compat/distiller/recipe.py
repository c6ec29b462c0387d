"""``DistillerRecipe``: runs a Distiller schedule file with prunekit's coupled groups.

Semantics (Distiller's, with coupling handled):

* At the start of an epoch, the policies that include it run in the order the file declares them
  (Distiller's rule, which its files rely on: a thinning declared before a pruner that starts on
  the same epoch runs first).
* A structured pruner **masks** channels: the listed layers' groups lose ``removal_count(size,
  s)`` channels in total, ``size`` being the width at the last thinning (Distiller measures a
  sparsity against the layer's current width) and ``s`` the pruner's ``desired_sparsity`` or, for
  ``_AGP`` classes, Distiller's AGP value
  (:func:`~prunekit.schedules.functions.distiller_agp_sparsity`) over its policy's window.
  Channels masked earlier stay masked. Masks are re-applied after every optimizer step.
* A thinning extension (``FilterRemover``, ``ChannelRemover``, ``StructureRemover``) **removes**
  the masked channels physically. Without one, the removal happens in :meth:`finalize`.
* ``group_dependency: Leader`` shares one choice of channels across the listed layers, ranked by
  the first listed weight alone (Distiller's rule; ``leader_ranking="group"`` sums every member).
* ``group_type: Rows`` masks a Linear layer's input columns and keeps them as masks (Distiller's
  thinning does not remove them; removing them would cut every layer feeding it).
* ``args: {fold_batchnorm: true}`` on a policy ranks with BatchNorm folded into the convolutions
  (:mod:`prunekit.compat.distiller.fold`).
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

from prunekit.compat.distiller.fold import folded_batchnorm
from prunekit.compat.distiller.groups import (
    check_parameter,
    check_targets,
    coupling_message,
    group_key,
    leader_scores,
    leader_view,
    listed_layer,
    producers_of,
    resolve_targets,
)
from prunekit.compat.distiller.reconstruction import fm_reconstruction_hook
from prunekit.compat.distiller.regularizers import DistillerPenalty
from prunekit.compat.distiller.schema import DistillerSchedule, PolicySpec, PrunerSpec, parse_distiller
from prunekit.criteria import CRITERIA
from prunekit.criteria.group_type import score_group
from prunekit.engine import criterion_with_data
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph, as_input_tuple
from prunekit.inputs import InputsLike
from prunekit.masks import ChannelMasks, masks_for_plan
from prunekit.metrics import count_params, macs_per_module
from prunekit.report import PruneReport
from prunekit.schedules.decisions import apply_decision_, decision_from_plan
from prunekit.schedules.elementwise import (
    DENSE_NOTE,
    apply_weight_masks_,
    column_mask,
    magnitude_mask,
    mask_sparsity,
    threshold_mask,
)
from prunekit.schedules.functions import distiller_agp_sparsity
from prunekit.schedules.recipe import Batches, Decision, Recipe, RecipeEvent, decision_from_dict, decision_to_dict
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["DistillerRecipe"]

log = logging.getLogger(__name__)
STATE_FORMAT = "prunekit.distiller_recipe/1"
_FORCED = -1e300  # score that keeps an already-masked channel chosen


class DistillerRecipe(Recipe):
    """A :class:`Recipe` for a Distiller schedule (see the module docstring).

    Args:
        schedule: the parsed schedule (:func:`prunekit.compat.distiller.schema.parse_distiller`).
        num_batches: calibration batches that data-driven rankings (APoZ, mean activation,
            gradient) read.
        leader_ranking: how a ``group_dependency: Leader`` pruner ranks its channels: "first"
            (Distiller's rule, the default: by the first listed weight alone) or "group" (by every
            member of the leader's coupled group, summed).
    """

    def __init__(self, schedule: DistillerSchedule, *, num_batches: int = 4, leader_ranking: str = "first") -> None:
        if leader_ranking not in ("first", "group"):
            raise ConfigError(
                f"leader_ranking: must be 'first' or 'group', but got {leader_ranking!r}", module="leader_ranking"
            )
        self.schedule = schedule
        self.num_batches = num_batches
        self.leader_ranking = leader_ranking
        self.lr_schedulers = schedule.lr_schedulers
        acting = [p for p in schedule.policies if p.kind in ("pruner", "extension", "regularizer")]
        self.num_epochs = max((max(p.epochs) + 1 for p in acting), default=1)
        #: the epochs the file describes, lr_scheduler policies included: Distiller runs one
        #: training of this length, its policies acting over all of it
        self.run_epochs = max((max(p.epochs) + 1 for p in schedule.policies), default=1)
        self.thinning_epochs = sorted({e for p in schedule.policies if p.kind == "extension" for e in p.epochs})
        self.needs_data = any(
            getattr(CRITERIA.get(s.criterion), "needs_data", False) or s.reconstructs
            for s in schedule.pruners.values()
            if s.kind == "structured"
        )
        self.sizes: dict[str, int] = {}  # group key -> size at the last thinning
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

    def check(self, model: nn.Module, example_inputs: InputsLike) -> None:
        """Checks every pruner against ``model`` before anything is changed or trained.

        Every listed parameter exists (close names suggested), is a weight matrix whose channels
        can be pruned, a ``strict: true`` pruner lists its whole coupled group, and a Leader's
        groups are as wide as the leader's. :meth:`on_epoch_begin` calls it at the first epoch,
        so a bad pruner whose policy starts at epoch 30 fails before the first batch.

        Raises:
            ConfigError: naming the pruner's YAML path.
        """
        for spec in self.schedule.pruners.values():
            names = [(f"{spec.path}.weights[{i}]", w) for i, w in enumerate(spec.weights)]
            names += [(f"{spec.path}.levels.{k}", k) for k in spec.levels if k != "*"]
            names += [(f"{spec.path}.thresholds.{k}", k) for k in spec.thresholds if k != "*"]
            for where, name in names:
                check_parameter(model, name, where)
        structured = [s for s in self.schedule.pruners.values() if s.kind == "structured"]
        if structured:
            graph = DependencyGraph(model, as_input_tuple(example_inputs))
            for spec in structured:
                if spec.group_type == "Rows":  # masks on the Linear layer alone: no group involved
                    for i, w in enumerate(spec.weights):
                        listed_layer(model, spec, i, w)
                else:
                    check_targets(resolve_targets(model, graph, spec), spec)
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

    # ------------------------------------------------------------------------------ hooks
    def on_epoch_begin(
        self, model: nn.Module, example_inputs: InputsLike, epoch: int, *, calibration: Batches = None
    ) -> RecipeEvent:
        """Runs the pruners and thinning extensions scheduled for ``epoch``, in the order the file
        declares their policies (Distiller's rule when several fall on one epoch)."""
        if not self._checked:
            self.check(model, example_inputs)
        if calibration is not None:
            self._calibration = calibration
        event = RecipeEvent(epoch)
        segments: list[tuple[str, list[tuple[PolicySpec, Any]]]] = []  # runs of one kind, in file order
        for policy in self.schedule.policies:
            if epoch not in policy.epochs or policy.kind in ("lr_scheduler", "regularizer"):  # handled elsewhere
                continue
            item: Any
            if policy.kind == "extension":
                item, kind = self.schedule.extensions[policy.instance], "extension"
            else:
                item = self.schedule.pruners[policy.instance]
                kind = item.kind
            if segments and segments[-1][0] == kind and kind != "extension":
                segments[-1][1].append((policy, item))
            else:
                segments.append((kind, [(policy, item)]))
        for kind, due in segments:
            if kind == "structured":
                self._structured(model, example_inputs, epoch, due, calibration, event)
            elif kind == "elementwise":
                self._elementwise(model, epoch, due, event)
            else:
                ext = due[0][1]
                self._thin(model, example_inputs, event, f"extension {ext.name} ({ext.cls}, {ext.thinning_func_str})")
        return event

    def _structured(self, model, example_inputs, epoch, due, calibration, event: RecipeEvent) -> None:
        graph = DependencyGraph(model, as_input_tuple(example_inputs))
        rows = [(p, s) for p, s in due if s.group_type == "Rows"]
        if rows:
            self._rows(model, graph, epoch, rows, event)
        due = [(p, s) for p, s in due if s.group_type != "Rows"]
        if not due:
            return
        for policy, spec in due:
            self._say_args(event, policy)
            s = self._sparsity(spec, policy, epoch)
            targets = resolve_targets(model, graph, spec)
            check_targets(targets, spec)
            for t in targets:
                if t.missing:
                    self._say(
                        event,
                        f"{spec.path}: {coupling_message(t, spec)}; the choice is extended to the whole group "
                        f"({', '.join(t.missing)} pruned too; strict: true makes this an error)",
                        once=f"{spec.path}:{group_key(t.group)}",
                    )
            if spec.reconstructs and self._fm is None:
                self._fm = (copy.deepcopy(model), [])
            if spec.reconstructs and self._fm is not None:
                self._fm[1].extend(m for t in targets for m in t.listed if m not in self._fm[1])
            data = calibration if calibration is not None else self._calibration
            crit = criterion_with_data(
                spec.criterion, {**spec.criterion_options, **self._data_options(spec)}, data, where=spec.path
            )
            with folded_batchnorm(model, graph, enabled=bool(policy.args.get("fold_batchnorm"))) as scored:
                scores = {t.group.id: score_group(crit, scored, t.group, group_type=spec.group_type) for t in targets}
                if spec.leader and self.leader_ranking == "first":
                    lead = leader_view(targets, spec)
                    scores[lead.id] = score_group(crit, scored, lead, group_type=spec.group_type)
                    self._say(
                        event,
                        f"{spec.path}: Leader group ranked by {spec.weights[0]} alone (Distiller's rule)",
                        once=f"{spec.path}:leader",
                    )
            if spec.leader and len(targets) > 1:
                scores = leader_scores(scores, targets, spec)
            for t in targets:
                key = group_key(t.group)
                # Distiller measures a sparsity against the layer's current width: sizes are reset
                # by every thinning, so a pruner after a thinning cuts its fraction of what is left
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

    def _say_args(self, event: RecipeEvent, policy: PolicySpec) -> None:
        for key in policy.args:
            if key != "fold_batchnorm":
                self._say(event, f"{policy.path}.args.{key}: not used by prunekit", once=f"{policy.path}.{key}")

    def _rows(self, model: nn.Module, graph: DependencyGraph, epoch: int, due, event: RecipeEvent) -> None:
        """``group_type: Rows``: masks a Linear layer's input columns and keeps them as masks.

        Distiller's thinning does not remove row masks, so the producers feeding the layer (a whole
        residual stream, in a ResNet) keep their filters; the masks stay through fine-tuning.
        """
        params = dict(model.named_parameters())
        new: dict[str, torch.Tensor] = {}
        for policy, spec in due:
            self._say_args(event, policy)
            s = self._sparsity(spec, policy, epoch)
            for w in spec.weights:
                mask = column_mask(params[w], s, norm=spec.criterion)
                dropped = int((mask[0] == 0).sum())
                new[w] = mask * self.weight_masks[w] if w in self.weight_masks else mask
                producers = producers_of(graph, model, w.rpartition(".")[0])
                self._say(
                    event,
                    f"epoch {epoch}: {spec.path}: group_type Rows masks {dropped} of {mask.shape[1]} input "
                    f"columns of {w} ({s:.4f}); kept as masks, as Distiller does, not removed (removing them "
                    f"would cut the filters of {', '.join(producers) or 'the layers'} feeding it)",
                )
        self.weight_masks.update(new)
        apply_weight_masks_(model, new)
        self._record_masks(event, new, epoch)

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
        self._record_masks(event, {w: self.weight_masks[w] for _, sp in due for w in self._names(sp, params)}, epoch)

    def _names(self, spec: PrunerSpec, params: Mapping[str, torch.Tensor]) -> list[str]:
        if spec.cls == "AutomatedGradualPruner":
            return list(spec.weights)
        return list(self._expand(spec.levels or spec.thresholds, params))

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
        self._after_thinning(model, decision)
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

    def _after_thinning(self, model: nn.Module, decision: Decision) -> None:
        """Masks are spent and widths are new: a later pruner measures its sparsity against the
        thinned width (Distiller's rule); element-wise masks are sliced like their weights."""
        self.masks, self.pending, self.sizes = None, {}, {}
        params = dict(model.named_parameters())
        for name, mask in list(self.weight_masks.items()):
            module, _, attr = name.rpartition(".")
            roles = decision.module_keep.get(module, {}) if attr == "weight" else {}
            for dim, role in ((0, "out"), (1, "in")):
                if role in roles and mask.shape[dim] != params[name].shape[dim]:
                    mask = mask.index_select(dim, torch.as_tensor(roles[role], dtype=torch.long))
            if mask.shape != params[name].shape:  # a layout the roles do not describe (grouped)
                mask = (params[name].detach() != 0).float().cpu()
            self.weight_masks[name] = mask

    def _record_masks(self, event: RecipeEvent, masks: dict[str, torch.Tensor], epoch: int) -> None:
        """Records the masks this step set, and drops them from earlier element-wise decisions.

        A checkpoint then holds each parameter's mask once, not once per AGP step (a ResNet-50
        schedule: 3 MB of bits instead of 3.4 GB of floats). Replaying the decisions still ends with
        the same masks; the weights in between come from the checkpoint, not from the replay.
        """
        for earlier in self.decisions:
            if earlier.kind == "elementwise":
                for name in masks:
                    earlier.weight_masks.pop(name, None)
        self._record(event, Decision("elementwise", weight_masks=masks, info={"epoch": epoch}))

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
            self._after_thinning(model, decision)
            self._fm = None
        elif decision.kind == "elementwise":
            self.weight_masks.update(decision.weight_masks)
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
