"""``PruneOptions``: every pruning option, declared once and validated once.

``prune_``, ``mask_``, ``channel_prune_``, ``sensitivity_analysis``, the schedules and the recipes
take a ``PruneOptions`` (keyword arguments are sugar that build one); the YAML schema
(:class:`~prunekit.config.PruneConfig` extends this class) and the CLI flags are derived from
its fields and their ``metadata``. Adding an option is one field here plus its tests.

Each field's ``metadata`` holds:

* ``help``: one line, used for the CLI ``--help`` and the docs;
* ``flag``: the command-line flag (``None``: no flag); ``choices`` / ``nargs`` for argparse;
* ``yaml``: False if the YAML schema must not accept the key (``sparsity`` is
  ``schedule.final`` there).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prunekit.criteria import CRITERIA, Criterion
from prunekit.errors import ConfigError, UnknownNameError, option_error
from prunekit.graph.tracer import TRACERS  # the graph layer owns the tracer names
from prunekit.latency.measure import LATENCY_BACKENDS

__all__ = [
    "PruneOptions",
    "Override",
    "SCOPES",
    "TRACERS",
    "resolve_options",
    "option_flags",
    "option_error",
    "check_fraction",
    "round_multiple",
    "parse_round_to",
    "AMOUNTS",
    "TARGETS",
]

SCOPES = ("local", "global")
TARGETS = ("target_macs", "target_params", "target_latency")
AMOUNTS = ("sparsity", *TARGETS)  # exactly one says how much a prune removes


def _meta(help: str, *, flag: str | None = "", yaml: bool = True, **argparse: Any) -> dict[str, Any]:
    """Field metadata; ``flag=""`` derives ``--field-name`` from the field's name."""
    return {"help": help, "flag": flag, "yaml": yaml, "argparse": argparse}


def check_fraction(
    name: str, value: object, *, low_open: bool = False, high_closed: bool = False, terse: bool = False
) -> float:
    """``value`` as a float in [0, 1) (or (0, 1] with the flags), else a ConfigError naming it
    (``terse``: "must be in [0, 1)" for a number out of range, the YAML schema's wording)."""
    interval = ("(0" if low_open else "[0") + (", 1]" if high_closed else ", 1)")
    what = "a fraction in " + interval + " of the original to keep" if low_open else "a number in " + interval
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise option_error(name, f"must be {what}, but got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise option_error(name, f"must be {what}, but got {value!r}")
    # compared as given: float() of a 400-digit int would overflow
    if not ((value > 0 if low_open else value >= 0) and (value <= 1 if high_closed else value < 1)):
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:20] + "..."
        raise option_error(name, f"must be {'in ' + interval if terse else what}, but got {shown}")
    return float(value)


def parse_round_to(text: str) -> int | str:
    """A ``--round-to`` value: ``auto`` or an int (argparse's ``type``)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, but got {text!r} (or 'auto')") from None


def _int_at_least(name: str, value: object, low: int = 1, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise option_error(name, f"must be an int >= {low}{why}, but got {value!r}")
    return value


def round_multiple(options: PruneOptions) -> int:
    """``options.round_to`` as an int, for code that cannot measure the model.

    Raises:
        ConfigError: ``round_to="auto"``, which only :func:`prunekit.prune_` and
            :func:`prunekit.mask_` resolve (they time the model on ``latency_backend``).
    """
    if options.round_to == "auto":
        raise option_error(
            "round_to", "'auto' is resolved by prune_ and mask_ (they measure the model): give an int here"
        )
    return int(options.round_to or 1)


@dataclass(frozen=True)
class Override:
    """A per-module sparsity.

    Attributes:
        pattern: an exact module name, or ``re:<regex>`` matched with ``re.fullmatch``.
        sparsity: the module's sparsity in [0, 1), or ``None`` to leave it unpruned.
    """

    pattern: str
    sparsity: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern or self.pattern == "re:":
            raise option_error("pattern", f"must be a module name or 're:<regex>', but got {self.pattern!r}")
        if self.pattern.startswith("re:"):
            try:
                re.compile(self.pattern[3:])
            except re.error as e:
                raise option_error("pattern", f"invalid regex {self.pattern[3:]!r}: {e}") from None
        if self.sparsity is not None:
            check_fraction("sparsity", self.sparsity, terse=True)

    @property
    def is_regex(self) -> bool:
        return self.pattern.startswith("re:")

    def matches(self, module_name: str) -> bool:
        if self.is_regex:
            return re.fullmatch(self.pattern[3:], module_name) is not None
        return module_name == self.pattern


def _as_overrides(value: object) -> tuple[Override, ...]:
    """A mapping ``{name or 're:pattern': sparsity}`` or a sequence of Override, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        out = []
        for key, sparsity in value.items():
            try:
                if sparsity is not None:
                    check_fraction("sparsity", sparsity)
                out.append(Override(key, sparsity))
            except ConfigError as e:
                raise option_error(f"overrides[{key!r}]", e.detail or str(e)) from None
        return tuple(out)
    if isinstance(value, (tuple, list)) and all(isinstance(o, Override) for o in value):
        return tuple(value)
    raise option_error(
        "overrides", f"must be a dict of module name or 're:' pattern -> sparsity, but got {type(value).__name__}"
    )


@dataclass(frozen=True)
class PruneOptions:
    """What to prune and how; validated at construction (a :class:`~prunekit.errors.ConfigError`
    names the field). Give at most one of ``sparsity``, ``target_macs``, ``target_params``,
    ``target_latency``; :func:`prunekit.prune_` needs exactly one.

    Attributes:
        sparsity: fraction in [0, 1) of channels to remove from each prunable group
            (``scope="local"``) or overall (``scope="global"``).
        target_macs: instead of ``sparsity``, the fraction in (0, 1] of the original MACs to
            keep; the sparsity is found by bisection.
        target_params: the same for the parameter count.
        target_latency: the fraction in (0, 1] of the original model's latency to keep,
            MEASURED on ``latency_backend`` at ``latency_batch`` with ``latency_threads``
            (bisection on measured candidates; the realised ratio is measured before returning).
        latency_backend: a name in :data:`prunekit.latency.LATENCY_BACKENDS`: "torch" (eager,
            CPU), "onnxruntime" (CPU) or "cuda".
        latency_batch: the batch size latency is measured at.
        latency_threads: the runtime's intra-op threads for the measurement.
        report_latency: measure latency before and after on ``latency_backend`` and put it in
            the report; ``None`` (default) does so only with ``target_latency``.
        latency_allocation: with ``scope="global"`` and a target, allocate the cut with the
            per-layer latency table of ``latency_backend`` (channels go where they buy the most
            latency per unit of importance, see :mod:`prunekit.engine.latency_allocation`)
            instead of one ranking of scores; ``None`` (default) does so with
            ``target_latency`` and global scope.
        latency_balance: the exponent ``p`` of the allocation's ``(size / kept) ** p`` factor on
            a chunk's importance (see :mod:`prunekit.engine.latency_allocation`): 0 is HALP's
            importance per latency alone, which may thin the layers that are slow per channel
            to the minimum; larger values keep widths closer to a uniform cut.
        allocation_candidates: with latency allocation, also build this many other allocations
            of the same cost (the uniform cut and randomly perturbed greedy orders), score each
            by its loss on ``allocation_data`` after a short fine-tune and re-estimated
            batch-norm statistics (NetAdapt, EagleEye; :mod:`prunekit.engine.allocation_search`),
            and keep the best; 0 (default): the greedy allocation alone.
        allocation_batches: how many batches of ``allocation_data`` are read: the first half
            re-estimates the batch-norm statistics, the second half scores.
        allocation_steps: SGD steps each candidate trains on the first half of the batches
            before it is scored (a short fine-tune, as NetAdapt's; default 16; 0: EagleEye's
            re-estimated statistics alone).
        allocation_lr: the learning rate of those steps (SGD, momentum 0.9).
        allocation_data: the labelled ``(inputs, targets)`` batches (a DataLoader or a list)
            that score the candidates; needed with ``allocation_candidates`` (the pipeline
            passes training batches; not in YAML or on the command line).
        criterion: a registered criterion name or a :class:`~prunekit.Criterion` instance.
        criterion_options: keyword arguments for a criterion given by name.
        scope: "local" or "global" (one ranking on mean-normalised scores).
        ignore: module names whose output channels must not change (a container covers its
            children); their input channels may still shrink with the layer before.
        round_to: keep channel counts multiples of this; "auto" measures the multiple the
            backend's kernels are fastest at (:func:`prunekit.latency.best_multiple`) and, with
            ``latency_allocation`` and a MAC or parameter target, keeps it only if the whole cut
            at 1 does not run clearly faster. Default: "auto" with ``target_latency``, else 1.
        exact_only: prune only groups where removal is exactly equivalent to zeroing.
        max_group_sparsity: with ``scope="global"``, the most any one group may lose.
        remove_branches: with ``scope="global"``, a group that lives only inside a branch (a
            residual block's inner channels, :mod:`prunekit.graph.branches`) may lose all its
            channels: the branch is removed and its last layer returns its bias (depth
            pruning; ``max_group_sparsity`` does not cap these groups).
        overrides: per-module sparsity: an exact name wins, then the first ``re:<regex>`` that
            fully matches, then ``sparsity``; ``None`` keeps the module. A group takes the
            smallest override of the layers whose outputs it holds. A dict is accepted.
        tracer: "auto", "fx" or "export" (see :class:`~prunekit.DependencyGraph`).
    """

    sparsity: float | None = field(
        default=None,
        metadata=_meta("fraction of channels to remove from each group (in [0, 1))", yaml=False, type=float),
    )
    target_macs: float | None = field(
        default=None, metadata=_meta("fraction of the original MACs to keep, e.g. 0.5", type=float)
    )
    target_params: float | None = field(
        default=None, metadata=_meta("fraction of the original parameters to keep", type=float)
    )
    target_latency: float | None = field(
        default=None, metadata=_meta("fraction of the original measured latency to keep, e.g. 0.5", type=float)
    )
    latency_backend: str = field(
        default="torch", metadata=_meta("where latency is measured: torch, onnxruntime or cuda")
    )
    latency_batch: int = field(default=1, metadata=_meta("batch size latency is measured at", type=int))
    latency_threads: int = field(default=1, metadata=_meta("runtime threads for latency measurement", type=int))
    report_latency: bool | None = field(
        default=None,
        metadata=_meta("measure latency before/after into the report (default: with a latency target)",
                       action="store_true"),
    )  # fmt: skip
    latency_allocation: bool | None = field(
        default=None,
        metadata=_meta(
            "with --scope global and a target, cut where channels buy the most measured latency per importance "
            "(default: with --target-latency)",
            action="store_true",
        ),
    )
    latency_balance: float = field(
        default=1.0,
        metadata=_meta("with latency allocation, how strongly widths are kept balanced (0: latency only)", type=float),
    )
    allocation_candidates: int = field(
        default=0,
        metadata=_meta("with latency allocation, score this many other cuts on data; keep the best", type=int),
    )
    allocation_batches: int = field(
        default=16, metadata=_meta("batches of allocation data read (half for batch norms, half to score)", type=int)
    )
    allocation_steps: int = field(
        default=16, metadata=_meta("SGD steps each scored allocation trains first (a short fine-tune)", type=int)
    )
    allocation_lr: float = field(
        default=0.01, metadata=_meta("learning rate of those steps (SGD, momentum 0.9)", type=float)
    )
    allocation_data: Any = field(
        default=None,
        compare=False,
        metadata=_meta("(inputs, targets) batches that score the allocations", flag=None, yaml=False),
    )
    criterion: str | Criterion = field(default="l1", metadata=_meta("importance criterion (prunekit list criteria)"))
    criterion_options: dict[str, Any] = field(
        default_factory=dict, metadata=_meta("keyword arguments of the criterion", flag=None)
    )
    scope: str = field(default="local", metadata=_meta("rank channels per group or globally", choices=SCOPES))
    ignore: tuple[str, ...] = field(
        default=(), metadata=_meta("module names whose output channels are kept", nargs="*")
    )
    round_to: int | str | None = field(
        default=None,
        metadata=_meta(
            "keep channel counts multiples of this, or 'auto' (measured; default with a latency target, else 1)",
            type=parse_round_to,
        ),
    )
    exact_only: bool = field(
        default=False, metadata=_meta("prune only groups whose removal is exactly zeroing", action="store_true")
    )
    max_group_sparsity: float = field(
        default=0.9, metadata=_meta("with --scope global, the most one group may lose", type=float)
    )
    remove_branches: bool = field(
        default=False,
        metadata=_meta(
            "with --scope global, remove whole residual branches where their channels rank lowest (depth pruning)",
            action="store_true",
        ),
    )
    overrides: tuple[Override, ...] = field(
        default=(), metadata=_meta("per-module sparsities (exact name, then re:<regex>)", flag=None)
    )
    tracer: str = field(default="auto", metadata=_meta("how the model is traced", choices=TRACERS))

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__  # normalise the accepted input forms of a frozen dataclass
        amounts = [n for n in AMOUNTS if getattr(self, n) is not None]
        if len(amounts) > 1:
            raise option_error(
                amounts[-1],
                f"give exactly one of sparsity, target_macs or target_params (or target_latency), but got {amounts}",
            )
        if self.sparsity is not None:
            setattr_(self, "sparsity", check_fraction("sparsity", self.sparsity))
        for name in TARGETS:
            if getattr(self, name) is not None:
                setattr_(self, name, check_fraction(name, getattr(self, name), low_open=True, high_closed=True))
        if isinstance(self.criterion, str):
            if self.criterion not in CRITERIA:
                raise option_error("criterion", CRITERIA.unknown_message(self.criterion), UnknownNameError)
        elif not isinstance(self.criterion, Criterion):
            raise option_error("criterion", f"must be a criterion name or a Criterion, but got {self.criterion!r}")
        if self.criterion_options is None:
            setattr_(self, "criterion_options", {})
        if not isinstance(self.criterion_options, Mapping) or not all(
            isinstance(k, str) for k in self.criterion_options
        ):
            raise option_error(
                "criterion_options", f"must be a mapping with string keys, but got {self.criterion_options!r}"
            )
        setattr_(self, "criterion_options", dict(self.criterion_options))
        _choice("scope", self.scope, SCOPES)
        _choice("tracer", self.tracer, TRACERS)
        ignore = (self.ignore,) if isinstance(self.ignore, str) else () if self.ignore is None else self.ignore
        if not isinstance(ignore, (tuple, list)) or not all(isinstance(n, str) for n in ignore):
            raise option_error("ignore", f"must be a list of module names, but got {self.ignore!r}")
        setattr_(self, "ignore", tuple(ignore))
        self._check_latency()
        if not isinstance(self.exact_only, bool):
            raise option_error("exact_only", f"must be true or false, but got {self.exact_only!r}")
        setattr_(self, "max_group_sparsity", check_fraction("max_group_sparsity", self.max_group_sparsity))
        if not isinstance(self.remove_branches, bool):
            raise option_error("remove_branches", f"must be true or false, but got {self.remove_branches!r}")
        if self.remove_branches and self.scope != "global":
            raise option_error(
                "remove_branches",
                "removes a branch where its channels rank lowest across the model, so it needs "
                f"scope='global' (got scope={self.scope!r}); set scope: global",
            )
        overrides = _as_overrides(self.overrides)
        seen: set[str] = set()
        for i, o in enumerate(overrides):
            if o.pattern in seen:
                raise option_error(f"overrides[{i}].pattern", f"duplicate pattern {o.pattern!r}")
            seen.add(o.pattern)
        setattr_(self, "overrides", overrides)

    def _check_latency(self) -> None:
        setattr_ = object.__setattr__
        if self.round_to is None:
            setattr_(self, "round_to", "auto" if self.target_latency is not None else 1)
        if self.round_to != "auto" and (
            isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1
        ):
            raise option_error("round_to", f"must be an int >= 1, but got {self.round_to!r} (or 'auto')")
        if self.latency_backend not in LATENCY_BACKENDS:
            raise option_error(
                "latency_backend", LATENCY_BACKENDS.unknown_message(self.latency_backend), UnknownNameError
            )
        _int_at_least("latency_batch", self.latency_batch)
        _int_at_least("latency_threads", self.latency_threads)
        candidates = _int_at_least("allocation_candidates", self.allocation_candidates, 0)
        _int_at_least("allocation_batches", self.allocation_batches, 2, " (half re-estimate batch norms, half score)")
        _int_at_least("allocation_steps", self.allocation_steps, 0)
        balance = self.latency_balance
        if isinstance(balance, bool) or not isinstance(balance, (int, float)) or not 0 <= balance <= 16:
            raise option_error("latency_balance", f"must be a number in [0, 16], but got {balance!r}")
        object.__setattr__(self, "latency_balance", float(balance))
        lr = self.allocation_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
            raise option_error("allocation_lr", f"must be a number > 0, but got {lr!r}")
        object.__setattr__(self, "allocation_lr", float(lr))
        for name in ("report_latency", "latency_allocation"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise option_error(name, f"must be true, false or null, but got {getattr(self, name)!r}")
        if self.latency_allocation and self.sparsity is not None:
            raise option_error("latency_allocation", "needs a target (target_macs, target_params or target_latency)")
        if self.latency_allocation and self.scope != "global":
            raise option_error("latency_allocation", "needs scope='global' (local scope stays uniform)")
        allocating = self.allocates_by_latency if self.target is not None else self.sparsity is None
        if candidates and not (allocating and self.scope == "global"):
            raise option_error(
                "allocation_candidates",
                "chooses among latency allocations, so it needs scope='global' with target_latency (or "
                "latency_allocation=True with target_macs / target_params)",
            )

    @property
    def measures_latency(self) -> bool:
        """Whether a prune measures latency before and after (``report_latency``, else with a
        latency target)."""
        return self.target_latency is not None if self.report_latency is None else self.report_latency

    @property
    def allocates_by_latency(self) -> bool:
        """Whether the cut is allocated with the latency table (``latency_allocation``, else
        with ``target_latency``; global scope and a target only)."""
        wanted = self.target_latency is not None if self.latency_allocation is None else self.latency_allocation
        return wanted and self.scope == "global" and self.target is not None

    @property
    def target(self) -> tuple[str, float] | None:
        """``(name, value)`` of the target (``target_macs``, ``target_params`` or
        ``target_latency``); None when a sparsity is given."""
        for name in TARGETS:
            value = getattr(self, name)
            if value is not None:
                return name, float(value)
        return None

    def require_amount(self) -> None:
        """Raises unless exactly one of sparsity / target_macs / target_params / target_latency
        is given."""
        if self.sparsity is None and self.target is None:
            raise option_error(
                "sparsity", "give exactly one of sparsity, target_macs or target_params (or target_latency)"
            )

    def override_for(self, module_name: str, default: float | None) -> float | None:
        """The sparsity of ``module_name``: an exact override, then the first matching ``re:``
        override, then ``default``. ``None`` means: do not prune it."""
        for o in self.overrides:
            if not o.is_regex and o.pattern == module_name:
                return o.sparsity
        for o in self.overrides:
            if o.is_regex and o.matches(module_name):
                return o.sparsity
        return default

    def replace(self, **changes: Any) -> PruneOptions:
        """A copy with ``changes`` (field names checked, values validated)."""
        return resolve_options(self, **changes)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close and len(choices) > 2 else ""
        listed = " or ".join(map(repr, choices)) if len(choices) == 2 else "one of " + ", ".join(map(repr, choices))
        raise option_error(name, f"must be {listed}, but got {value!r}{hint}")


def resolve_options(options: PruneOptions | None = None, /, **kwargs: Any) -> PruneOptions:
    """``options`` with ``kwargs`` applied: the keyword-argument sugar of every pruning function.

    Raises:
        ConfigError: an unknown keyword (with the closest field name) or an invalid value.
    """
    base = PruneOptions() if options is None else options
    if not isinstance(base, PruneOptions):
        raise option_error("options", f"must be a PruneOptions, but got {type(base).__name__}")
    if not kwargs:
        return base
    names = [f.name for f in dataclasses.fields(base)]
    derive = kwargs.get("target_latency") is not None and "round_to" not in kwargs
    if derive and base.target_latency is None and base.round_to == 1:
        kwargs["round_to"] = None  # 1 was the default without a latency target: derive it again
    try:
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise option_error(key, f"is not a pruning option{hint} Options: {', '.join(names)}", UnknownNameError)
        return dataclasses.replace(base, **kwargs)
    except ConfigError as e:  # the Python spelling: "round_to must be ...", the argument's name first
        if e.detail is None or e.module is None:
            raise
        raise type(e)(f"{e.module} {e.detail}", module=e.module, detail=e.detail) from None


def option_flags(cls: type = PruneOptions) -> dict[str, str]:
    """Field name -> command-line flag, for the fields of ``cls`` that have one."""
    out = {}
    for f in dataclasses.fields(cls):
        flag = f.metadata.get("flag", None)
        if flag is not None:
            out[f.name] = flag or "--" + f.name.replace("_", "-")
    return out
