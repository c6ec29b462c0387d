"""GReg: a growing L2 penalty on the channels chosen for removal.

Wang, Qin, Zhang & Fu, "Neural Pruning via Growing Regularization", ICLR 2021 (GReg-1). At the
start of the phase the channels to remove are chosen once, by a criterion (L1 by default) at the
sparsity the prune will use; then only those channels are penalised, with a coefficient that
grows by ``delta`` every ``interval`` steps up to ``ceiling``:

    lambda(t) = min(ceiling, delta * floor(t / interval))
    R_t(W) = lambda(t) / 2 * sum_groups sum_{c in S_g} ||W_c||_2^2

so its gradient on the selected slices is ``lambda(t) * w`` (a weight decay that rises until they
are ~0), and the kept channels train as usual. ``W_c`` is every slice of the coupled group that
holds channel ``c``, as in :mod:`prunekit.regularizers.group_lasso`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria import Criterion, get_criterion
from prunekit.errors import ConfigError, option_error
from prunekit.graph.dependency import DependencyGraph
from prunekit.prune import prune
from prunekit.regularizers.base import REGULARIZERS, Regularizer, check_strength
from prunekit.regularizers.slices import channel_sq_norms
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["greg_strength", "GrowingRegularizer"]


def greg_strength(step: int, *, delta: float, interval: int, ceiling: float) -> float:
    """``min(ceiling, delta * floor(step / interval))``: GReg's coefficient at ``step``."""
    return min(ceiling, delta * (step // interval))


@REGULARIZERS.register(
    "greg", description="growing L2 penalty on the channels chosen for removal (Wang et al. 2021, GReg-1)"
)
class GrowingRegularizer(Regularizer):
    """GReg-1 over coupled groups; see the module docstring for the formula.

    Args:
        strength: the ceiling of the coefficient (the paper's ``lambda_max``, 1).
        sparsity: fraction of each prunable group's channels to push to zero (the local sparsity
            of the prune that follows).
        target_macs: instead of ``sparsity``, the fraction of the MACs the prune that follows
            keeps: the sparsity is found at setup as :func:`prunekit.prune_` finds it (bisection,
            local scope), which needs ``example_inputs``.
        delta: the increment of the coefficient (the paper's 1e-4).
        interval: steps between increments (the paper's ``K_u`` = 10).
        criterion: how the channels to remove are chosen (default "l1").

    Note:
        The paper chooses per layer; here a coupled group's channels are chosen together, with
        the same selection rules as :func:`prunekit.prune_` (locked channels and balanced cells
        are honoured), so a later ``prune_`` at the same sparsity with ``l1`` cuts them.
    """

    name = "greg"

    def __init__(
        self,
        *,
        strength: float = 1.0,
        sparsity: float | None = None,
        target_macs: float | None = None,
        delta: float = 1e-4,
        interval: int = 10,
        criterion: str | Criterion = "l1",
    ) -> None:
        super().__init__(strength=strength)
        if (sparsity is None) == (target_macs is None):
            raise ConfigError("greg: give exactly one of sparsity or target_macs", module="sparsity")
        for key, value in (("sparsity", sparsity), ("target_macs", target_macs)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0
            ):
                raise ConfigError(f"{key}: must be a number in (0, 1), but got {value!r}", module=key)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise option_error("interval", f"must be an int >= 1, but got {interval!r}")
        self.sparsity = float(sparsity) if sparsity is not None else None
        self.target_macs = float(target_macs) if target_macs is not None else None
        self.delta = check_strength(delta, "delta")
        self.interval = interval
        self.criterion = get_criterion(criterion)
        self.selected: dict[int, np.ndarray] | None = None

    def setup(
        self, model: nn.Module, graph: DependencyGraph, *, example_inputs: tuple[torch.Tensor, ...] | None = None
    ) -> None:
        super().setup(model, graph)
        if self.selected is not None:  # a resumed run keeps the selection from its checkpoint
            return
        if self.sparsity is None:
            if example_inputs is None:
                raise ConfigError("greg: target_macs needs setup(..., example_inputs=...)", module="target_macs")
            _, report = prune(model, example_inputs, target_macs=self.target_macs, criterion=self.criterion)
            self.sparsity = float(report.config["sparsity"])
        self.selected = {}
        for g in graph.groups:
            if g.prunable:
                scores = np.asarray(self.criterion.scores(model, g), dtype=np.float64)
                self.selected[g.id] = select_channels(g, scores, removal_count(g.size, self.sparsity))

    def coefficient(self, step: int) -> float:
        """``lambda(step)``; see :func:`greg_strength`."""
        return greg_strength(step, delta=self.delta, interval=self.interval, ceiling=self.strength)

    def penalty(self, model: nn.Module, *, step: int = 0) -> torch.Tensor:
        self._require_ready()
        assert self.selected is not None  # set by setup (internal invariant)
        params = dict(model.named_parameters())
        total = torch.zeros((), device=next(iter(params.values())).device)
        lam = self.coefficient(step)
        if lam == 0.0:
            return total
        for g in self.groups:
            chosen = self.selected.get(g.group_id)
            if chosen is not None and len(chosen):
                sq = channel_sq_norms(params, g)
                total = total + 0.5 * lam * sq[torch.as_tensor(chosen, device=sq.device)].sum()
        return total

    def state_dict(self) -> dict[str, Any]:
        if self.selected is None:  # not set up yet: nothing chosen
            return {}
        selected = {str(k): [int(c) for c in v] for k, v in self.selected.items()}
        return {"selected": selected, "sparsity": self.sparsity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"selected", "sparsity"}
        if unknown:
            raise ConfigError(f"regularizer 'greg': unexpected state keys {sorted(unknown)}", module="greg")
        if "selected" in state:
            self.selected = {int(k): np.asarray(v, dtype=np.int64) for k, v in state["selected"].items()}
            self.sparsity = state.get("sparsity", self.sparsity)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "sparsity": self.sparsity,
            "target_macs": self.target_macs,
            "delta": self.delta,
            "interval": self.interval,
            "criterion": getattr(self.criterion, "name", type(self.criterion).__name__),
        }
