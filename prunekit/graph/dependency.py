"""``DependencyGraph``: the public face of the dependency analysis."""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.channels import MemberKey, TraceContext
from prunekit.errors import ConfigError, ExampleInputError, PrunekitError, TraceError
from prunekit.graph.groups import Group, build_groups
from prunekit.graph.interpreter import run_analysis
from prunekit.graph.recorder import restore_buffers, snapshot_buffers
from prunekit.graph.tracer import TRACERS, trace_modes
from prunekit.inputs import ExampleInputs, as_example_inputs, as_input_tuple
from prunekit.modes import restore_training_flags, save_training_flags

__all__ = ["DependencyGraph", "as_input_tuple"]

log = logging.getLogger(__name__)


def _doubled(inputs: ExampleInputs) -> ExampleInputs:
    """Batch of at least 2 for the train-mode pass (BatchNorm refuses one value per channel)."""
    return inputs.map(lambda t: torch.cat([t, t]) if t.ndim > 0 and t.shape[0] == 1 else t)


class DependencyGraph:
    """The coupled channel groups of a model, derived by tracing it.

    The model is traced with ``torch.fx`` (in eval mode, and in train mode too when the graphs
    differ), run once on ``example_inputs``, and every op's effect on channels is followed. The
    model is not modified (BatchNorm statistics and the RNG are restored after the train pass).

    Args:
        model: the model to analyse.
        example_inputs: a Tensor; a tuple (one item per positional argument); a list (one
            argument that is a list, as torchvision detection models take); a dict (keyword
            arguments); or a :class:`~prunekit.inputs.ExampleInputs`. See :mod:`prunekit.inputs`.
        tracer: "auto" (``torch.fx``, falling back to ``torch.export`` when fx cannot trace the
            model), "fx", "export", or "record": run the model once and record what runs, for
            models whose Python control flow depends on tensor values (see
            :mod:`prunekit.graph.recorder` for what that analysis can miss).
        run_context: ``run_context(training)`` gives a context manager entered around the run
            of the eval-mode (``False``) and train-mode (``True``) graphs (the engine passes one
            that skips the arithmetic of convolutions and counts MACs: the analysis reads only
            shapes). If that context manager has a ``call_leaf`` method
            (:data:`~prunekit.graph.interpreter.LeafCall`), the eval-mode run asks it first for
            each leaf module's output.

    Attributes:
        groups: the list of :class:`~prunekit.graph.groups.Group`.
        num_nodes: number of fx nodes interpreted.
        notes: parameters used by ops prunekit has no rule for (their channels are kept).
        backend: "fx", "export" or "record", the tracer that produced the graph.

    Raises:
        TraceError: the model cannot be traced.
        ExampleInputError: the inputs are not tensors or the model fails on them.
        UnsupportedLayerError: a leaf layer has parameters and no rule.
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: Any,
        *,
        tracer: str = "auto",
        run_context: Callable[[bool], Any] | None = None,
    ) -> None:
        if tracer not in TRACERS:
            choices = ", ".join(repr(t) for t in TRACERS)
            raise ConfigError(f"tracer must be one of {choices}, but got {tracer!r}", module="tracer")
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module, but got {type(model).__name__}", module="model")
        inputs = as_example_inputs(example_inputs)
        self.model = model
        try:
            ctx = self._analyse(model, inputs, tracer, run_context)
            self.groups: list[Group]
            self.groups, self._member_roots = build_groups(ctx, model)
        except PrunekitError:
            raise
        except Exception as exc:  # never a raw exception: name the model and chain the cause
            raise TraceError(
                f"the dependency analysis of {type(model).__name__} failed: {type(exc).__name__}: {exc}",
                module=type(model).__name__,
            ) from exc
        self.num_nodes = ctx.num_nodes
        self.input_nodes: dict[str, list] = ctx.input_nodes
        self.notes: list[str] = list(ctx.notes)

    def _analyse(
        self, model: nn.Module, inputs: ExampleInputs, tracer: str, run_context: Callable[[bool], Any] | None
    ) -> TraceContext:
        """Traces and interprets the eval (and train, if different) graphs into one context."""
        ctx = TraceContext(model=model)
        graphs = trace_modes(model, inputs, _doubled(inputs), tracer=tracer)
        self.backend = graphs[0].backend
        saved = snapshot_buffers(model)
        flags = save_training_flags(model)
        try:
            for traced in graphs:
                for m in flags:
                    if m.training is not traced.training:  # Module.__setattr__ is slow: only changes
                        m.training = traced.training
                running = run_context(traced.training) if run_context is not None else contextlib.nullcontext()
                if not traced.training:
                    with running:
                        run_analysis(traced, ctx, inputs, model=model, call_leaf=getattr(running, "call_leaf", None))
                    continue
                with torch.random.fork_rng(devices=[]):
                    try:
                        with running:
                            run_analysis(traced, ctx, _doubled(inputs), model=model)
                    except ExampleInputError as exc:
                        warnings.warn(
                            f"the train-mode graph of {type(model).__name__} could not be run on the "
                            f"example inputs ({exc}); channels used only in training mode "
                            "(auxiliary heads) are not analysed",
                            stacklevel=3,
                        )
        finally:
            restore_training_flags(flags)
            restore_buffers(model, saved)
        return ctx

    # ---------------------------------------------------------------- queries
    @property
    def prunable_groups(self) -> list[Group]:
        return [g for g in self.groups if g.prunable]

    def group_of(self, module: str, role: str = "out") -> Group | None:
        """The group holding ``module``'s ``role`` channels (the first one, after a cat)."""
        for g in self.groups:
            for m in g.members:
                if m.module == module and m.role == role:
                    return g
        return None

    def groups_of(self, module: str, role: str = "out") -> list[Group]:
        """All groups holding some of ``module``'s ``role`` channels."""
        return [g for g in self.groups if any(m.module == module and m.role == role for m in g.members)]

    def member_roots(self) -> dict[MemberKey, np.ndarray]:
        """Per member, the channel identity (root atom) of each position; used by surgery."""
        return self._member_roots

    def replaced(self, groups: list[Group], member_roots: dict[MemberKey, np.ndarray]) -> DependencyGraph:
        """A copy of this graph holding other groups and member roots (the engine derives the
        graph of a pruned model this way instead of tracing it again)."""
        new = copy.copy(self)
        new.groups, new._member_roots = groups, member_roots
        return new

    # ---------------------------------------------------------------- display
    def __len__(self) -> int:
        return len(self.groups)

    def __repr__(self) -> str:
        n_p = len(self.prunable_groups)
        return f"DependencyGraph({type(self.model).__name__}: {len(self.groups)} groups, {n_p} prunable)"

    def __str__(self) -> str:
        rows = [("id", "size", "prunable", "exact", "couplings", "members")]
        notes = []
        for g in self.groups:
            names = [str(m) for m in g.members]
            shown = ", ".join(names[:4]) + (f", ... (+{len(names) - 4})" if len(names) > 4 else "")
            rows.append(
                (
                    str(g.id),
                    str(g.size),
                    "yes" if g.prunable else "no",
                    "yes" if g.exact else "no",
                    ",".join(sorted(g.couplings)) or "-",
                    shown,
                )
            )
            if g.reason:
                notes.append(f"  group {g.id}: {g.reason}")
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
        head = f"{repr(self)}\n"
        text = head + "\n".join(lines) + ("\nreasons:\n" + "\n".join(notes) if notes else "")
        if self.notes:
            text += "\nnot analysed:\n" + "\n".join(f"  {n}" for n in self.notes)
        return text
