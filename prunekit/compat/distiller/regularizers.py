"""Distiller's ``regularizers``: ``L1Regularizer`` and ``GroupLassoRegularizer``, with its meaning.

A Distiller schedule lists, per regularizer, ``reg_regims: {param: strength}`` (L1) or
``{param: [strength, group_type]}`` (group lasso), and policies give the epochs it is active.
During those epochs its penalty is added to the loss (Distiller's ``before_backward_pass``):

* ``L1Regularizer``: ``strength * sum |w|`` over the parameter (element-wise).
* ``GroupLassoRegularizer``: ``strength * sum_g sqrt(||W_g||_2^2 + 1e-8)`` over the parameter's
  groups ``W_g`` (Yuan & Lin 2006; Wen et al. 2016), ``group_type`` being
  ``3D``/``Filters`` (one filter ``W[o]`` of a 4-D conv weight), ``Channels`` (one input channel
  ``W[:, i]`` across all filters), ``2D`` (one kernel ``W[o, i]``), ``4D`` (the whole tensor,
  ``strength * ||W||_2``), ``Rows`` / ``Cols`` (rows / columns of a 2-D weight), or the sums
  ``Rows+Cols`` and ``Channels+4D``.

Unlike prunekit's own ``group_lasso`` (:mod:`prunekit.regularizers.group_lasso`), these groups are
per layer, as in Distiller: a residual partner or a BatchNorm is not pulled along.

With ``threshold_criteria`` (``Mean_Abs`` or ``Max``), after every optimizer step the groups
whose mean (or max) ``|w|`` is at most the strength are zeroed, as Distiller's
``RegularizationPolicy.on_minibatch_end`` does; for ``L1Regularizer``, the elements with
``|w| <= strength``.

Note:
    Distiller's ``keep_mask`` (making the last thresholding permanent) has no counterpart: a
    zeroed group may grow back after the policy ends, and the pruners decide what is cut. For
    the sums (``Rows+Cols``...) a group is zeroed when either part is under the threshold.
    ``L1Regularizer`` given
    ``[strength, group_type]`` (the form its documentation shows under "Group regularization",
    which Distiller's own class would reject) is run as ``GroupLassoRegularizer``, with a message.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.regularizers import Regularizer

__all__ = [
    "REGULARIZER_CLASSES",
    "GROUP_TYPES",
    "RegularizerSpec",
    "parse_regularizer",
    "distiller_group_norms",
    "DistillerPenalty",
]

log = logging.getLogger(__name__)
REGULARIZER_CLASSES = ("L1Regularizer", "GroupLassoRegularizer")
# group type -> the weight dimensionality it needs
GROUP_TYPES = {"2D": 4, "3D": 4, "Filters": 4, "Channels": 4, "4D": 4, "Rows": 2, "Cols": 2}
COMBINED = {"Rows+Cols": ("Rows", "Cols"), "Cols+Rows": ("Rows", "Cols"), "Channels+4D": ("Channels", "4D"),
            "4D+Channels": ("Channels", "4D")}  # fmt: skip
EPSILON = 1e-8


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", module=path)


def _check_parameter(model: nn.Module, name: str, where: str) -> None:
    # (groups.check_parameter does the same, but groups imports the schema, which imports this)
    params = [n for n, _ in model.named_parameters()]
    if name not in params:
        close = difflib.get_close_matches(name, params, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _fail(where, f"{name!r} is not a parameter of {type(model).__name__}{hint}")


@dataclass(frozen=True)
class RegularizerSpec:
    """One entry of ``regularizers``.

    Attributes:
        name: the instance name. cls: the Distiller class. path: ``regularizers.<name>``.
        regims: parameter name (without ``module.``) -> (strength, group type or None for L1).
        threshold_criteria: as written (not applied).
        notes: what is run differently from the file's letter, said once when it first runs.
    """

    name: str
    cls: str
    path: str
    regims: dict[str, tuple[float, str | None]]
    threshold_criteria: str | None = None
    notes: tuple[str, ...] = ()


def parse_regularizer(name: str, data: object, path: str) -> RegularizerSpec:
    """Validates one ``regularizers`` entry (the dotted path in every error)."""
    if not isinstance(data, Mapping):
        raise _fail(path, f"must be a mapping, but got {data!r}")
    cls = data.get("class")
    if cls not in REGULARIZER_CLASSES:
        close = difflib.get_close_matches(str(cls), REGULARIZER_CLASSES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" Choices: {', '.join(REGULARIZER_CLASSES)}"
        raise _fail(f"{path}.class", f"unknown regularizer class {cls!r}{hint}")
    for key in data:
        if key not in ("class", "reg_regims", "threshold_criteria"):
            raise _fail(f"{path}.{key}", "unknown key; a regularizer has class, reg_regims and threshold_criteria")
    raw = data.get("reg_regims")
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(f"{path}.reg_regims", f"must map parameter names to strengths, but got {raw!r}")
    regims: dict[str, tuple[float, str | None]] = {}
    notes: list[str] = []
    for param, value in raw.items():
        where = f"{path}.reg_regims.{param}"
        group_type = None
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise _fail(where, f"must be [strength, group_type], but got {value!r}")
            value, group_type = value
            if group_type not in GROUP_TYPES and group_type not in COMBINED:
                choices = [*GROUP_TYPES, *COMBINED]
                close = difflib.get_close_matches(str(group_type), choices, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" Choices: {', '.join(choices)}"
                raise _fail(f"{where}[1]", f"unknown group type {group_type!r}{hint}")
        elif cls == "GroupLassoRegularizer":
            raise _fail(where, f"GroupLassoRegularizer needs [strength, group_type], but got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _fail(where if group_type is None else f"{where}[0]", f"must be a number >= 0, but got {value!r}")
        name_ = str(param).removeprefix("module.").replace(".module.", ".")
        regims[name_] = (float(value), group_type)
    if cls == "L1Regularizer" and any(t is not None for _, t in regims.values()):
        notes.append(f"{name}: L1Regularizer with [strength, group_type] runs as GroupLassoRegularizer")
    criteria = data.get("threshold_criteria")
    if criteria not in (None, "Max", "Mean_Abs"):
        raise _fail(f"{path}.threshold_criteria", f"must be Max or Mean_Abs, but got {criteria!r}")
    return RegularizerSpec(str(name), str(cls), path, regims, criteria, tuple(notes))


def distiller_group_norms(weight: torch.Tensor, group_type: str) -> torch.Tensor:
    """``sqrt(||W_g||^2 + eps)`` for every group ``g`` of ``weight`` (``4D``: ``||W||`` alone)."""
    if group_type in ("3D", "Filters"):
        sq = weight.reshape(weight.shape[0], -1).pow(2).sum(dim=1)
    elif group_type == "Channels":
        sq = weight.pow(2).sum(dim=(0, 2, 3))
    elif group_type == "2D":
        sq = weight.reshape(-1, weight.shape[2] * weight.shape[3]).pow(2).sum(dim=1)
    elif group_type == "Rows":
        sq = weight.pow(2).sum(dim=1)
    elif group_type == "Cols":
        sq = weight.pow(2).sum(dim=0)
    elif group_type == "4D":
        return weight.norm(2).reshape(1)
    else:
        raise ConfigError(f"group_type: unknown {group_type!r}", module="group_type")
    return (sq + EPSILON).sqrt()


class DistillerPenalty(Regularizer):
    """The summed penalty of the Distiller regularizers active in an epoch (module docstring)."""

    name = "distiller"
    needs_graph = False

    def __init__(self, specs: list[RegularizerSpec]) -> None:
        super().__init__(strength=1.0)  # the strengths are per parameter
        self.specs = specs

    def setup(
        self, model: nn.Module, graph: DependencyGraph | None, *, example_inputs: tuple[torch.Tensor, ...] | None = None
    ) -> None:
        for spec in self.specs:
            for param, (_, group_type) in spec.regims.items():
                where = f"{spec.path}.reg_regims.{param}"
                _check_parameter(model, param, where)
                dims = model.get_parameter(param).dim()
                for part in COMBINED.get(group_type or "", (group_type,)):
                    if part is not None and GROUP_TYPES[part] != dims:
                        raise _fail(where, f"group type {part!r} needs a {GROUP_TYPES[part]}-D weight, not {dims}-D")
            for note in spec.notes:
                log.info("%s", note)
        self.ready = True

    def _terms(self, model: nn.Module) -> list[tuple[float, str | None, torch.Tensor]]:
        self._require_ready()
        return [
            (strength, group_type, model.get_parameter(param))
            for spec in self.specs
            for param, (strength, group_type) in spec.regims.items()
        ]

    def penalty(self, model: nn.Module, *, step: int = 0) -> torch.Tensor:
        total = None
        for strength, group_type, w in self._terms(model):
            if group_type is None:
                term = strength * w.abs().sum()
            else:
                parts = [distiller_group_norms(w, t).sum() for t in COMBINED.get(group_type, (group_type,))]
                term = strength * torch.stack(parts).sum()
            total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    @torch.no_grad()
    def threshold_(self, model: nn.Module) -> None:
        """Zeroes the groups under the strength of regularizers with ``threshold_criteria``."""
        for spec in self.specs:
            if spec.threshold_criteria is None:
                continue
            for param, (strength, group_type) in spec.regims.items():
                w = model.get_parameter(param)
                if group_type is None:
                    w.masked_fill_(w.abs() <= strength, 0.0)
                    continue
                for part in COMBINED.get(group_type, (group_type,)):
                    w.mul_(_keep_mask(w, part, strength, spec.threshold_criteria))

    def channel_norms(self, model: nn.Module) -> dict[int, np.ndarray]:
        raise ConfigError("Distiller regularizers have per-layer groups, not channel groups", module="distiller")

    @torch.no_grad()
    def below(self, model: nn.Module, threshold: float) -> float:
        """The fraction of the penalised groups (elements for L1) whose norm is under ``threshold``."""
        hits = total = 0
        for _, group_type, w in self._terms(model):
            parts = COMBINED.get(group_type or "", (group_type,))
            for t in parts:
                norms = w.abs().reshape(-1) if t is None else distiller_group_norms(w, t)
                hits += int((norms < threshold).sum())
                total += norms.numel()
        return hits / max(total, 1)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "regularizers": [s.name for s in self.specs]}


def _keep_mask(w: torch.Tensor, group_type: str, threshold: float, criteria: str) -> torch.Tensor:
    """1 where the group's mean (``Mean_Abs``) or max (``Max``) ``|w|`` exceeds ``threshold``, broadcast to ``w``."""
    a = w.abs()

    def stat(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        return t.mean(dim=dims, keepdim=True) if criteria == "Mean_Abs" else t.amax(dim=dims, keepdim=True)

    dims = {"3D": (1, 2, 3), "Filters": (1, 2, 3), "Channels": (0, 2, 3), "2D": (2, 3), "4D": (0, 1, 2, 3),
            "Rows": (1,), "Cols": (0,)}[group_type]  # fmt: skip
    return (stat(a, dims) > threshold).to(w.dtype).expand_as(w)
