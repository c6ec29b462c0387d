"""``Runner``: the state of a run and its epoch loop (used by :func:`prunekit.pipeline.run`).

Per epoch: seed the data order for this epoch, ``recipe.on_epoch_begin`` (rank 0 decides, the
event is broadcast, other ranks replay it), train, step the recipe's LR schedulers,
``recipe.on_epoch_end`` (and ``finalize`` at the last epoch of the prune phase), evaluate, append
a history row, and write the checkpoint. After a physical cut the optimizer and the LR schedulers
are created again on the new parameters at the same schedule position, and DDP is re-wrapped.
In a ``sparsify`` phase the regularizer is set up on the model at its first epoch (traced once)
and its penalty is added to the loss (:class:`~prunekit.pipeline.sparsify.RegularizedLoss`).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from prunekit.data.loaders import reseed
from prunekit.errors import option_error
from prunekit.graph.dependency import DependencyGraph
from prunekit.metrics import count_macs, count_params
from prunekit.pipeline.checkpoint import (
    report_from_data,
    report_to_data,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from prunekit.pipeline.distill import DistillationLoss
from prunekit.pipeline.distributed import DistContext, broadcast_object, shard_loader, sync_buffers, wrap_model
from prunekit.pipeline.history import write_history
from prunekit.pipeline.optim import StepLR, build_optimizer, build_recipe_schedulers, rebuild_recipe_schedulers
from prunekit.pipeline.source import ModelSource
from prunekit.pipeline.sparsify import RegularizedLoss
from prunekit.pipeline.train import EvalResult, cross_entropy_loss, evaluate, progress_bar, train_epoch
from prunekit.report import PruneReport
from prunekit.schedules.recipe import Decision, Recipe, RecipeEvent, decision_from_dict, decision_to_dict

__all__ = ["Runner"]

log = logging.getLogger("prunekit.pipeline")
_METRIC_KEY = {
    "train": "after_train",
    "sparsify": "after_sparsify",
    "prune": "after_prune",
    "finetune": "after_finetune",
}


class Runner:
    """Holds the model, optimizer, recipe position and history of a run; see the module docstring."""

    def __init__(
        self,
        ctx: DistContext,
        source: ModelSource,
        phases: list[Any],
        train_loader: DataLoader,
        val_loader: DataLoader,
        *,
        out_dir: Path | None,
        seed: int,
        progress: bool,
        calibration_batches: int,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.ctx, self.source, self.phases, self.seed = ctx, source, phases, seed
        self.out_dir, self.progress = out_dir, progress and ctx.is_main
        self.calibration_batches, self.on_epoch_end = calibration_batches, on_epoch_end
        self.device = ctx.device
        self.model: nn.Module = source.build().to(self.device)
        self.train_loader = shard_loader(train_loader, ctx, seed=seed)
        self.val_loader = val_loader
        self.example = next(iter(val_loader))[0][:1].to(self.device)
        self.params_original = count_params(self.model)
        self.position = (0, 0)  # (phase index, next epoch in it)
        self.step = 0  # batches done in the current phase (the LR schedule's position)
        self.decisions: list[tuple[int, Decision]] = []
        self.reports: list[PruneReport] = []
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, dict[str, float]] = {}
        self.teacher: nn.Module | None = None  # distilled from; also saved as the original model
        self.original: nn.Module | None = None  # the model before the prune phase
        self.active: int | None = None  # the phase whose optimizer is built
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: StepLR | None = None
        self.recipe_scheds: list[Any] = []
        self.scaler: torch.amp.GradScaler | None = None
        self.wrapped: nn.Module = self.model

    # ----------------------------------------------------------------- the loop
    def run_all(self) -> None:
        p, e = self._normalise(*self.position)
        while p < len(self.phases):
            if self.active != p:
                self._start_phase(p)
            phase = self.phases[p]
            bar = progress_bar(range(e, phase.num_epochs), enabled=self.progress, desc=phase.name, position=0)
            for epoch in bar:
                row = self._epoch(p, epoch)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(val_top1=f"{row['val_top1']:.4f}", params=row["params"])
            p, e = p + 1, 0

    def _normalise(self, p: int, e: int) -> tuple[int, int]:
        while p < len(self.phases) and e >= self.phases[p].num_epochs:
            p, e = p + 1, 0
        return p, e

    def _start_phase(self, p: int) -> None:
        phase = self.phases[p]
        if phase.name == "prune" and self.original is None:
            self.original = copy.deepcopy(self.model).eval()
            if self.teacher is None:
                self.teacher = self.original
            self._record_metrics("before", self._evaluate(phase))
        if phase.name == "finetune" and "after_prune" not in self.metrics.get("accuracy", {}):
            # fine-tuning a model pruned elsewhere: its accuracy now, and the teacher's
            self._record_metrics("after_prune", self._evaluate(phase))
            if self.teacher is not None:
                self._record_metrics("before", self._evaluate(phase, self.teacher), self.teacher)
        self.step = 0
        self._build_optimizer(p)
        self.scaler = torch.amp.GradScaler("cuda", enabled=phase.options.amp and self.device.type == "cuda")

    def _build_optimizer(self, p: int, recipe_states: list[dict[str, Any]] | None = None) -> None:
        phase = self.phases[p]
        self.active = p
        self.optimizer = build_optimizer(self.model, phase.options)
        specs = phase.recipe.lr_schedulers if phase.recipe is not None else ()
        if specs:
            self.schedule = None
            self.recipe_scheds = (
                rebuild_recipe_schedulers(self.optimizer, specs, recipe_states)
                if recipe_states is not None
                else build_recipe_schedulers(self.optimizer, specs)
            )
        else:
            steps = len(self.train_loader)
            if phase.options.max_batches is not None:
                steps = min(steps, phase.options.max_batches)
            self.schedule, self.recipe_scheds = StepLR(phase.options, steps_per_epoch=steps), []
        self.wrapped = wrap_model(self.model, self.ctx)

    def _loss_fn(self, phase: Any) -> Any:
        o = phase.options
        if not o.distill:
            return cross_entropy_loss(o.label_smoothing)
        if self.teacher is None:
            raise option_error(
                "distill",
                f"the {phase.name} phase distils from the unpruned model, but there is none; "
                "give a teacher (prunekit finetune --teacher DIR) or run the prune phase in the same run",
            )
        return DistillationLoss(
            self.teacher, temperature=o.distill_temperature, alpha=o.distill_alpha, label_smoothing=o.label_smoothing
        )

    def _epoch(self, p: int, e: int) -> dict[str, Any]:
        phase, recipe = self.phases[p], self.phases[p].recipe
        t0 = time.perf_counter()
        g = sum(ph.num_epochs for ph in self.phases[:p]) + e
        self._seed_data(g)
        if recipe is not None:
            wanted = max(self.calibration_batches, getattr(recipe, "data_batches", 0))
            calibration = self._calibration(g, wanted) if recipe.needs_data and self.ctx.is_main else None
            self._apply(p, lambda: recipe.on_epoch_begin(self.model, self.example, e, calibration=calibration))
        stats = None
        reg = phase.regularizer
        if reg is None and hasattr(recipe, "epoch_regularizer"):  # a Distiller schedule's regularizers
            reg = recipe.epoch_regularizer(e)
        if reg is not None and not reg.ready:  # first epoch of the phase, or the first after a resume
            graph = DependencyGraph(self.model, (self.example,)) if reg.needs_graph else None
            reg.setup(self.model, graph, example_inputs=(self.example,))  # type: ignore[arg-type]
        loss_fn = self._loss_fn(phase)
        if reg is not None:
            loss_fn = RegularizedLoss(loss_fn, reg, self.model, start_step=self.step)
        if phase.trains:
            o = phase.options
            assert self.optimizer is not None  # built by _start_phase or restore (internal invariant)
            stats = train_epoch(
                self.wrapped, self.train_loader, self.optimizer, loss_fn=loss_fn, step=self.step,
                schedule=self.schedule, scaler=self.scaler, recipe=recipe or self._mask_keeper(p),
                recipe_model=self.model, device=self.device, amp=o.amp, max_batches=o.max_batches, progress=self.progress,
                desc=f"{phase.name} {e + 1}/{phase.num_epochs}",
            )  # fmt: skip
            self.step += stats.steps
            sync_buffers(self.model, self.ctx)
            for spec, sched in zip(recipe.lr_schedulers if recipe is not None else (), self.recipe_scheds):
                if e in spec.epochs:
                    sched.step()
        if recipe is not None:
            self._apply(p, lambda: recipe.on_epoch_end(self.model, self.example, e))
            if e == phase.num_epochs - 1:
                self._apply(p, lambda: recipe.finalize(self.model, self.example))
        result = self._evaluate(phase)
        last = e == phase.num_epochs - 1
        if last:
            self._record_metrics(_METRIC_KEY[phase.name], result)
        row = {
            "epoch": g,
            "phase": phase.name,
            "lr": stats.lr if stats else "",
            "train_loss": stats.loss if stats else "",
            "train_acc": stats.acc if stats else "",
            "val_loss": result.loss,
            "val_top1": result.top1,
            "val_top5": result.top5,
            "params": count_params(self.model),
            "macs": count_macs(self.model, (self.example,)),
            "sparsity": 1.0 - self._nonzero() / max(self.params_original, 1),
            "seconds": time.perf_counter() - t0,
            "penalty": loss_fn.mean_penalty if isinstance(loss_fn, RegularizedLoss) else "",
            "reg_below": reg.below(self.model, phase.threshold) if reg is not None else "",
        }
        self.history.append(row)
        log.info("%s epoch %d: val top-1 %.4f, loss %.4f", phase.name, e, result.top1, result.loss)
        if reg is not None:
            log.info(
                "%s epoch %d: %s penalty %.4g, %.1f%% of the prunable channels under %g",
                phase.name, e, reg.name, row["penalty"] or 0.0, 100 * row["reg_below"], phase.threshold,
            )  # fmt: skip
        self.position = (p, e + 1)
        state = self.state_dict()
        if self.out_dir is not None and self.ctx.is_main:
            save_checkpoint(state, self.out_dir / "checkpoint.pt")
            write_history(self.out_dir / "history.csv", self.history)
        if self.on_epoch_end is not None:
            self.on_epoch_end(state)
        return row

    # ----------------------------------------------------------------- helpers
    def _mask_keeper(self, p: int) -> Recipe | None:
        """The recipe of an earlier prune phase: its masks that outlive ``finalize`` (element-wise
        ones, which thinning cannot remove) are re-applied after every step of later phases."""
        return next((ph.recipe for ph in reversed(self.phases[:p]) if ph.recipe is not None), None)

    def _seed_data(self, g: int) -> None:
        """Fixes this epoch's data order and augmentations from (seed, epoch) alone."""
        s = self.seed * 1_000_003 + g
        loader = self.train_loader
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(g)
        if loader.generator is not None:
            loader.generator.manual_seed(s)
        reseed(loader.dataset, s + 7919 * self.ctx.rank)

    def _calibration(self, g: int, count: int) -> list[Any]:
        batches = [(x.to(self.device), y.to(self.device)) for _, (x, y) in zip(range(count), self.train_loader)]
        self._seed_data(g)  # the epoch's batches do not depend on whether calibration ran
        return batches

    def _apply(self, p: int, call: Callable[[], RecipeEvent]) -> None:
        """Rank 0 runs the recipe call; every other rank replays the broadcast decisions."""
        recipe: Recipe = self.phases[p].recipe
        event: RecipeEvent = broadcast_object(call() if self.ctx.is_main else None, self.ctx)  # type: ignore[assignment]
        if not self.ctx.is_main:
            for decision in event.decisions:
                recipe.replay(self.model, decision)
        self.decisions.extend((p, d) for d in event.decisions)
        self.reports.extend(event.reports)
        for message in event.messages:
            log.debug("%s", message)  # recipes log their own messages
        if event.rebuild_optimizer or any(d.kind == "physical" for d in event.decisions):
            states = [s.state_dict() for s in self.recipe_scheds]
            self._build_optimizer(p, states if self.recipe_scheds else None)

    def _evaluate(self, phase: Any, model: nn.Module | None = None) -> EvalResult:
        o = phase.options
        return evaluate(
            model or self.model,
            self.val_loader,
            device=self.device,
            max_batches=o.eval_batches,
            amp=o.amp,
            progress=self.progress,
        )

    def _record_metrics(self, key: str, result: EvalResult, model: nn.Module | None = None) -> None:
        model = model or self.model
        m = self.metrics
        m.setdefault("accuracy", {})[key] = result.top1
        m.setdefault("top5", {})[key] = result.top5
        m.setdefault("loss", {})[key] = result.loss
        m.setdefault("params", {})[key] = count_params(model)
        m.setdefault("macs", {})[key] = count_macs(model, (self.example,))

    @torch.no_grad()
    def _nonzero(self) -> int:
        return int(sum(int(torch.count_nonzero(p)) for p in self.model.parameters()))

    def all_reports(self) -> list[PruneReport]:
        """The cut of the saved source model (if any) followed by this run's cuts."""
        return self.source.base_reports() + self.reports

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        prune = next((ph for ph in self.phases if ph.recipe is not None), None)
        return {
            "source": self.source.to_dict(),
            "phases": [{"name": ph.name, "options": ph.options.to_dict()} for ph in self.phases],
            "position": {"phase": self.position[0], "epoch": self.position[1], "step": self.step},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
            "lr_schedulers": [s.state_dict() for s in self.recipe_scheds],
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "recipe": prune.recipe.state_dict() if prune is not None else {},
            "regularizers": {
                str(i): ph.regularizer.state_dict() for i, ph in enumerate(self.phases) if ph.regularizer is not None
            },
            "decisions": [{"phase": p, "decision": decision_to_dict(d)} for p, d in self.decisions],
            "reports": [report_to_data(r) for r in self.reports],
            "history": list(self.history),
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "original": self.original.state_dict() if self.original is not None else None,
            "teacher_is_original": self.teacher is not None and self.teacher is self.original,
            "rng": rng_state(),
            "seed": self.seed,
            "batch_size": self.train_loader.batch_size,
        }

    def _check_same_options(self, state: dict[str, Any]) -> None:
        """Refuses to resume with other training options, seed or batch size than the checkpoint's
        (the result would match neither run); a changed epoch count is allowed, with a warning."""
        changed: list[str] = []
        for ph, saved in zip(self.phases, state["phases"]):
            now = ph.options.to_dict()
            for key, old in saved["options"].items():
                if key in now and now[key] != old and key != "eval_batches":
                    changed.append(f"{ph.name} {key} {old!r} -> {now[key]!r}")
        if state.get("seed", self.seed) != self.seed:
            changed.append(f"seed {state['seed']!r} -> {self.seed!r}")
        batch = self.train_loader.batch_size
        if state.get("batch_size", batch) != batch:
            changed.append(f"batch size {state['batch_size']!r} -> {batch!r}")
        refused = [c for c in changed if " epochs " not in c]
        if refused:
            raise option_error(
                "resume",
                f"the checkpoint was made with other options ({'; '.join(refused)}); resume with the same "
                "options, or start a new run in another folder",
            )
        for c in changed:
            warnings.warn(f"resume: {c}: the learning-rate schedule changes from this epoch on", stacklevel=3)

    def restore(self, state: dict[str, Any], *, teacher: nn.Module | None = None) -> None:
        """Brings a freshly built runner to the point ``state`` (from :meth:`state_dict`) records."""
        if state["source"] != self.source.to_dict():
            raise option_error(
                "resume",
                f"the checkpoint was made from model {state['source']}, not {self.source.to_dict()}; "
                "resume with the same --model / --model-dir",
            )
        names = [ph["name"] for ph in state["phases"]]
        if names != [ph.name for ph in self.phases]:
            raise option_error("resume", f"the checkpoint's phases are {names}; resume the same command")
        self._check_same_options(state)
        model = self.source.build()
        for entry in state["decisions"]:
            p, decision = entry["phase"], decision_from_dict(entry["decision"])
            self.phases[p].recipe.replay(model, decision)
            self.decisions.append((p, decision))
        prune = next((ph for ph in self.phases if ph.recipe is not None), None)
        if prune is not None:
            prune.recipe.load_state_dict(state["recipe"])
        for i, reg_state in state.get("regularizers", {}).items():
            regularizer = self.phases[int(i)].regularizer
            if regularizer is not None:  # set up again on the restored model at its next epoch
                regularizer.load_state_dict(reg_state)
        self.model = model.to(self.device)
        self.model.load_state_dict(state["model"])
        self.reports = [report_from_data(r) for r in state["reports"]]
        self.history = list(state["history"])
        self.metrics = {k: dict(v) for k, v in state["metrics"].items()}
        if state["original"] is not None:
            self.original = self.source.build().to(self.device).eval()
            self.original.load_state_dict(state["original"])
        self.teacher = teacher.to(self.device) if teacher is not None else None
        if self.teacher is None and state["teacher_is_original"]:
            self.teacher = self.original
        p, e = state["position"]["phase"], state["position"]["epoch"]
        self.position, self.step = (p, e), state["position"]["step"]
        if p < len(self.phases) and 0 < e < self.phases[p].num_epochs:  # mid-phase: its optimizer too
            self._build_optimizer(p, state["lr_schedulers"] or None)
            self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[union-attr]
            self.scaler = torch.amp.GradScaler(
                "cuda", enabled=self.phases[p].options.amp and self.device.type == "cuda"
            )
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
