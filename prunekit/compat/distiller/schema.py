"""Distiller's schedule schema: parsed and validated into plain, frozen dataclasses.

Distiller (Intel Labs) describes compression in a YAML file with the top-level keys ``version``,
``pruners``, ``regularizers``, ``lr_schedulers``, ``extensions`` and ``policies``; see its
documentation, "Compression scheduling". This module checks such a file field by field, with the
dotted YAML path in every error (``pruners.filter_pruner.desired_sparsity: must be in [0, 1),
but got 1.2``); :class:`~prunekit.compat.distiller.DistillerRecipe` runs it.

Parameter names lose DataParallel's ``module.`` prefix: a leading one, and the one Distiller puts
after ``features`` for AlexNet and VGG (it wraps only their ``.features`` in DataParallel), so
``features.module.3.weight`` is ``features.3.weight``. ``weights`` may be one name or a list.
Names that match no parameter are reported when the recipe first sees the model.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from prunekit.compat.distiller.regularizers import RegularizerSpec, parse_regularizer
from prunekit.errors import ConfigError
from prunekit.schedules.functions import check_fraction, check_step
from prunekit.schedules.recipe import LRSchedulerSpec

__all__ = [
    "PrunerSpec",
    "ExtensionSpec",
    "PolicySpec",
    "DistillerSchedule",
    "parse_distiller",
    "STRUCTURED_PRUNERS",
    "ELEMENTWISE_PRUNERS",
    "strip_prefix",
    "UNSUPPORTED_PRUNERS",
    "is_quantization_stats",
]

TOP_LEVEL = ("version", "pruners", "regularizers", "lr_schedulers", "extensions", "policies")
# class -> (criterion, criterion options, default group_type or None when it must be given)
STRUCTURED_PRUNERS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "L1RankedStructureParameterPruner": ("l1", {}, None),
    "L2RankedStructureParameterPruner": ("l2", {}, None),
    "ActivationAPoZRankedFilterPruner": ("apoz", {}, "Filters"),
    "ActivationMeanRankedFilterPruner": ("mean_activation", {}, "Filters"),
    "GradientRankedFilterPruner": ("taylor", {"variant": "weight"}, "Filters"),
    "RandomRankedFilterPruner": ("random", {}, "Filters"),
}
STRUCTURED_PRUNERS.update({f"{k}_AGP": v for k, v in list(STRUCTURED_PRUNERS.items())})
STRUCTURED_PRUNERS["FMReconstructionChannelPruner"] = ("l1", {}, "Channels")
ELEMENTWISE_PRUNERS = ("AutomatedGradualPruner", "SparsityLevelParameterPruner", "MagnitudeParameterPruner")
#: Distiller's pruner classes that prunekit refuses, with what they do.
UNSUPPORTED_PRUNERS = {
    "SplicingPruner": "dynamic network surgery (masks that can grow back)",
    "SensitivityPruner": "thresholds from a multiple of each weight's standard deviation",
    "RandomLevelStructureParameterPruner": "random structure pruning at a random level per step",
    "BaiduRNNPruner": "Narang et al.'s RNN pruning",
    "BernoulliFilterPruner": "random filter dropping during training (drop-filter)",
    "BernoulliFilterPruner_AGP": "random filter dropping during training (drop-filter)",
    "StructureParameterPruner": "a base class",
    "LpRankedStructureParameterPruner": "a base class",
    "AutomatedGradualPrunerBase": "a base class",
    "ActivationRankedFilterPruner": "a base class",
}
THINNING = {
    "FilterRemover": ("remove_filters",),
    "ChannelRemover": ("remove_channels",),
    "StructureRemover": ("remove_filters", "remove_channels", "contract_model"),
}
_STRUCT_FIELDS = ("class", "group_type", "weights", "group_dependency", "strict")
_GROUP_TYPES = ("Filters", "Channels", "Rows")
# Distiller's PruningPolicy options: fold_batchnorm changes the ranking (compat.distiller.fold); the
# others are accepted and reported as not used (masks are always applied after every optimizer step).
_PRUNER_ARGS = (
    "mini_batch_pruning_frequency",
    "mask_on_forward_only",
    "mask_gradients",
    "use_double_copies",
    "discard_masks_at_minibatch_end",
    "fold_batchnorm",
)


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", module=path)


def _suggest(name: object, choices: Any) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" Choices: {', '.join(sorted(choices))}"


def _mapping(data: object, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _fail(path, f"must be a mapping, but got {data!r} ({type(data).__name__})")
    return data


def _keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(f"{path}.{key}", f"unknown field{_suggest(key, allowed)}")


def _fraction(data: Mapping[str, Any], key: str, path: str) -> float:
    if key not in data:
        raise _fail(f"{path}.{key}", "is required")
    try:
        return check_fraction(data[key], key)
    except ConfigError:
        raise _fail(f"{path}.{key}", f"must be in [0, 1), but got {data[key]!r}") from None


def strip_prefix(name: str) -> str:
    """``module.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight`` and
    ``features.module.3.weight`` -> ``features.3.weight`` (DataParallel's prefixes)."""
    name = name[len("module.") :] if name.startswith("module.") else name
    return "features." + name[len("features.module.") :] if name.startswith("features.module.") else name


def is_quantization_stats(data: Mapping[str, Any]) -> bool:
    """True for a Distiller quantization-statistics file (layer name -> ``inputs``/``output``
    -> ``min``/``max``...), which is not a schedule."""
    values = list(data.values())
    return bool(values) and all(
        isinstance(v, Mapping) and ("output" in v or "inputs" in v) and set(v) <= {"inputs", "output"} for v in values
    )


@dataclass(frozen=True)
class PrunerSpec:
    """One entry of ``pruners``.

    Attributes:
        name, cls, path: the instance name, its Distiller class, its YAML path.
        kind: "structured" or "elementwise".
        criterion, criterion_options: the prunekit criterion that ranks (structured).
        group_type: "Filters", "Channels" or "Rows" (structured).
        weights: parameter names, ``module.`` stripped.
        desired_sparsity: fixed sparsity; ``initial``/``final`` for AGP classes.
        leader: ``group_dependency: Leader``. strict: raise instead of extending to a group.
        levels / thresholds: per-parameter values of the element-wise classes.
    """

    name: str
    cls: str
    path: str
    kind: str
    criterion: str = "l1"
    criterion_options: dict[str, Any] = field(default_factory=dict)
    group_type: str | None = None
    weights: tuple[str, ...] = ()
    desired_sparsity: float | None = None
    initial: float | None = None
    final: float | None = None
    leader: bool = False
    strict: bool = False
    levels: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def agp(self) -> bool:
        return self.initial is not None

    @property
    def reconstructs(self) -> bool:
        return self.cls == "FMReconstructionChannelPruner"


@dataclass(frozen=True)
class ExtensionSpec:
    """A thinning extension: removes every masked structure physically."""

    name: str
    cls: str
    thinning_func_str: str
    path: str


@dataclass(frozen=True)
class PolicySpec:
    """One entry of ``policies``: what runs and at which epochs.

    Attributes:
        kind: "pruner", "lr_scheduler" or "extension". instance: the instance name.
        epochs: the epochs it runs at (from ``epochs`` or ``range(starting, ending, frequency)``).
        starting_epoch, ending_epoch, frequency: the window, when given that way.
        args: the policy's ``args``. path: ``policies[i]``.
    """

    kind: str
    instance: str
    epochs: tuple[int, ...]
    path: str
    starting_epoch: int | None = None
    ending_epoch: int | None = None
    frequency: int = 1
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DistillerSchedule:
    """A validated Distiller schedule."""

    version: int
    pruners: dict[str, PrunerSpec]
    extensions: dict[str, ExtensionSpec]
    lr_schedulers: tuple[LRSchedulerSpec, ...]
    policies: tuple[PolicySpec, ...]
    regularizers: dict[str, RegularizerSpec] = field(default_factory=dict)


def _weights(data: Mapping[str, Any], path: str) -> tuple[str, ...]:
    raw = data.get("weights")
    if isinstance(raw, str):  # Distiller accepts one name as a bare string
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(w, str) for w in raw):
        raise _fail(f"{path}.weights", f"must be a non-empty list of parameter names, but got {raw!r}")
    names = tuple(strip_prefix(w) for w in raw)
    for i, n in enumerate(names):
        if n in names[:i]:
            raise _fail(f"{path}.weights[{i}]", f"{n!r} is listed twice")
    return names


def _per_param(data: Mapping[str, Any], key: str, path: str, check: Any) -> dict[str, float]:
    raw = _mapping(data.get(key), f"{path}.{key}")
    if not raw:
        raise _fail(f"{path}.{key}", "must name at least one parameter")
    return {strip_prefix(str(k)): check(v, f"{path}.{key}.{k}") for k, v in raw.items()}


def _threshold(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _fail(path, f"must be a number >= 0, but got {value!r}")
    return float(value)


def _level(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise _fail(path, f"must be in [0, 1), but got {value!r}")
    return float(value)


def _pruner(name: str, data: object, path: str) -> PrunerSpec:
    d = _mapping(data, path)
    cls = d.get("class")
    known = (*STRUCTURED_PRUNERS, *ELEMENTWISE_PRUNERS)
    if cls not in known:
        if isinstance(cls, str) and cls.endswith("Quantizer"):
            raise _fail(f"{path}.class", f"{cls} is a quantizer: quantization is not supported by prunekit")
        if cls in UNSUPPORTED_PRUNERS:
            raise _fail(
                f"{path}.class",
                f"{cls} ({UNSUPPORTED_PRUNERS[cls]}) is a Distiller pruner that prunekit does not support; "
                f"supported: {', '.join(known)}",
            )
        raise _fail(f"{path}.class", f"unknown pruner class {cls!r}{_suggest(cls, known)}")
    if cls == "AutomatedGradualPruner":
        _keys(d, ("class", "initial_sparsity", "final_sparsity", "weights"), path)
        return _agp_spec(name, cls, d, path, kind="elementwise")
    if cls == "SparsityLevelParameterPruner":
        _keys(d, ("class", "levels"), path)
        return PrunerSpec(name, cls, path, "elementwise", levels=_per_param(d, "levels", path, _level))
    if cls == "MagnitudeParameterPruner":
        _keys(d, ("class", "thresholds"), path)
        return PrunerSpec(name, cls, path, "elementwise", thresholds=_per_param(d, "thresholds", path, _threshold))
    criterion, options, default_type = STRUCTURED_PRUNERS[cls]
    agp = cls.endswith("_AGP")
    sparsity_fields = ("initial_sparsity", "final_sparsity") if agp else ("desired_sparsity",)
    group_type = d.get("group_type", default_type)
    if group_type == "Blocks":  # said before its kwargs (block_shape) are refused as unknown
        raise _fail(
            f"{path}.group_type",
            "Blocks (block sparsity inside a weight tensor) is not supported by prunekit; "
            f"use one of {', '.join(_GROUP_TYPES)}",
        )
    _keys(d, (*_STRUCT_FIELDS, *sparsity_fields), path)
    if group_type not in _GROUP_TYPES:
        raise _fail(f"{path}.group_type", f"must be one of {', '.join(_GROUP_TYPES)}, but got {group_type!r}")
    if default_type is not None and group_type != default_type:
        raise _fail(f"{path}.group_type", f"{cls} prunes {default_type}, but got {group_type!r}")
    dependency = d.get("group_dependency")
    if dependency not in (None, "Leader"):
        raise _fail(f"{path}.group_dependency", f"must be 'Leader' (or absent), but got {dependency!r}")
    strict = d.get("strict", False)
    if not isinstance(strict, bool):
        raise _fail(f"{path}.strict", f"must be true or false, but got {strict!r}")
    common = dict(
        criterion=criterion,
        criterion_options=dict(options),
        group_type=group_type,
        weights=_weights(d, path),
        leader=dependency == "Leader",
        strict=strict,
    )
    if agp:
        return _agp_spec(name, cls, d, path, kind="structured", **common)
    return PrunerSpec(name, cls, path, "structured", desired_sparsity=_fraction(d, "desired_sparsity", path), **common)


def _agp_spec(name: str, cls: str, d: Mapping[str, Any], path: str, *, kind: str, **common: Any) -> PrunerSpec:
    initial, final = _fraction(d, "initial_sparsity", path), _fraction(d, "final_sparsity", path)
    if final < initial:
        raise _fail(f"{path}.final_sparsity", f"must be >= initial_sparsity ({initial}), but got {final!r}")
    common.setdefault("weights", _weights(d, path))
    return PrunerSpec(name, cls, path, kind, initial=initial, final=final, **common)


def _extension(name: str, data: object, path: str) -> ExtensionSpec:
    d = _mapping(data, path)
    cls = d.get("class")
    if cls not in THINNING:
        raise _fail(f"{path}.class", f"unknown extension class {cls!r}{_suggest(cls, THINNING)}")
    _keys(d, ("class", "thinning_func_str", "arch", "dataset"), path)
    func = d.get("thinning_func_str")
    if func not in THINNING[cls]:
        raise _fail(f"{path}.thinning_func_str", f"{cls} takes {' or '.join(THINNING[cls])}, but got {func!r}")
    return ExtensionSpec(name, cls, func, path)


def _lr_scheduler(name: str, data: object, path: str) -> tuple[str, dict[str, Any]]:
    d = dict(_mapping(data, path))
    cls_name = d.pop("class", None)
    classes = {
        n: c
        for n, c in vars(torch.optim.lr_scheduler).items()
        if inspect.isclass(c) and issubclass(c, torch.optim.lr_scheduler.LRScheduler) and not n.startswith("_")
    }
    classes.pop("LRScheduler", None)
    if cls_name not in classes:
        raise _fail(
            f"{path}.class", f"unknown torch.optim.lr_scheduler class {cls_name!r}{_suggest(cls_name, classes)}"
        )
    params = inspect.signature(classes[cls_name]).parameters
    accepted = [p for p in params if p not in ("self", "optimizer")]
    for key in d:
        if key not in accepted:
            raise _fail(f"{path}.{key}", f"not an argument of {cls_name}{_suggest(key, accepted)}")
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    for p in accepted:
        if params[p].default is inspect.Parameter.empty and params[p].kind not in variadic and p not in d:
            raise _fail(f"{path}.{p}", f"is required by {cls_name}")
    return cls_name, d


def _timing(d: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "epochs" in d:
        for key in ("starting_epoch", "ending_epoch", "frequency"):
            if key in d:
                raise _fail(f"{path}.{key}", "give either epochs or starting_epoch/ending_epoch/frequency, not both")
        raw = d["epochs"]
        if not isinstance(raw, (list, tuple)) or not raw:
            raise _fail(f"{path}.epochs", f"must be a non-empty list of ints, but got {raw!r}")
        epochs = []
        for i, e in enumerate(raw):
            if isinstance(e, bool) or not isinstance(e, int) or e < 0:
                raise _fail(f"{path}.epochs[{i}]", f"must be an int >= 0, but got {e!r}")
            epochs.append(e)
        return {"epochs": tuple(sorted(set(epochs)))}
    if "starting_epoch" not in d or "ending_epoch" not in d:
        raise _fail(path, "needs epochs: [...] or starting_epoch and ending_epoch")
    out: dict[str, Any] = {}
    for key, minimum in (("starting_epoch", 0), ("ending_epoch", 0), ("frequency", 1)):
        value = d.get(key, 1)
        try:
            out[key] = check_step(value, key, minimum=minimum)
        except ConfigError:
            raise _fail(f"{path}.{key}", f"must be an int >= {minimum}, but got {value!r}") from None
    if out["ending_epoch"] <= out["starting_epoch"]:
        raise _fail(
            f"{path}.ending_epoch",
            f"must be greater than starting_epoch ({out['starting_epoch']}), but got {out['ending_epoch']}",
        )
    out["epochs"] = tuple(range(out["starting_epoch"], out["ending_epoch"], out["frequency"]))
    return out


def _policy(data: object, path: str, defined: Mapping[str, Mapping[str, Any]]) -> PolicySpec:
    d = _mapping(data, path)
    kinds = [k for k in ("pruner", "regularizer", "lr_scheduler", "extension", "quantizer") if k in d]
    if len(kinds) != 1:
        raise _fail(path, f"must name exactly one of pruner, lr_scheduler, extension, but got {kinds or 'none'}")
    kind = kinds[0]
    _keys(d, (kind, "epochs", "starting_epoch", "ending_epoch", "frequency"), path)
    ref = _mapping(d[kind], f"{path}.{kind}")
    _keys(ref, ("instance_name", "args"), f"{path}.{kind}")
    instance = ref.get("instance_name")
    table = defined.get(kind, {})
    if kind == "quantizer":
        raise _fail(f"{path}.{kind}", f"{kind}s are not supported by prunekit")
    if instance not in table:
        section = {"pruner": "pruners", "lr_scheduler": "lr_schedulers", "extension": "extensions",
                   "regularizer": "regularizers"}[kind]  # fmt: skip
        hint = _suggest(instance, table) if table else f" (no {section} are defined)"
        raise _fail(f"{path}.{kind}.instance_name", f"{instance!r} is not defined under {section}{hint}")
    args = dict(_mapping(ref.get("args") or {}, f"{path}.{kind}.args"))
    allowed = _PRUNER_ARGS if kind == "pruner" else ()
    for key in args:
        if key not in allowed:
            raise _fail(f"{path}.{kind}.args.{key}", f"unknown argument{_suggest(key, allowed) if allowed else ''}")
    return PolicySpec(kind, str(instance), path=path, args=args, **_timing(d, path))


def parse_distiller(data: Mapping[str, Any]) -> DistillerSchedule:
    """Validates a parsed Distiller schedule.

    Raises:
        ConfigError: with the YAML path, for an unknown top-level key, class or field, a value
            out of range, a bad timing, a policy naming an undefined instance, regularizers or
            quantizers (not supported), or an lr_scheduler argument its class does not take.
    """
    top = _mapping(data, "schedule")
    if is_quantization_stats(top):
        raise _fail(
            "schedule",
            "this is a Distiller quantization-statistics file (layer -> inputs/output -> min/max), not a "
            "schedule; prunekit does not quantize",
        )
    if "quantizers" in top:
        raise _fail("quantizers", "quantization is not supported by prunekit (remove the quantizers section)")
    for key in top:
        if key not in TOP_LEVEL:
            raise _fail(str(key), f"unknown top-level key{_suggest(key, TOP_LEVEL)}")
    version = top.get("version", 1)
    if version != 1:
        raise _fail("version", f"Distiller schedules have version 1, but got {version!r}")
    regularizers = {
        str(n): parse_regularizer(str(n), v, f"regularizers.{n}")
        for n, v in _mapping(top.get("regularizers") or {}, "regularizers").items()
    }
    sections = {k: dict(_mapping(top.get(k) or {}, k)) for k in ("pruners", "extensions", "lr_schedulers")}
    pruners = {n: _pruner(n, v, f"pruners.{n}") for n, v in sections["pruners"].items()}
    extensions = {n: _extension(n, v, f"extensions.{n}") for n, v in sections["extensions"].items()}
    schedulers = {n: _lr_scheduler(n, v, f"lr_schedulers.{n}") for n, v in sections["lr_schedulers"].items()}
    raw_policies = top.get("policies") or []
    if not isinstance(raw_policies, (list, tuple)):
        raise _fail("policies", f"must be a list, but got {type(raw_policies).__name__}")
    defined: dict[str, Mapping[str, Any]] = {
        "pruner": pruners, "extension": extensions, "lr_scheduler": schedulers, "regularizer": regularizers,
    }  # fmt: skip
    policies = tuple(_policy(p, f"policies[{i}]", defined) for i, p in enumerate(raw_policies))
    for p in policies:
        spec = pruners.get(p.instance) if p.kind == "pruner" else None
        if spec is not None and spec.agp:
            if p.starting_epoch is None:
                raise _fail(p.path, f"AGP pruner {p.instance!r} needs starting_epoch and ending_epoch, not epochs")
            if (p.ending_epoch - p.starting_epoch - 1) // p.frequency * p.frequency <= 0:  # type: ignore[operator]
                raise _fail(
                    f"{p.path}.ending_epoch",
                    f"an AGP pruner needs ending_epoch - starting_epoch - 1 >= frequency ({p.frequency}), "
                    f"but got [{p.starting_epoch}, {p.ending_epoch})",
                )
    specs = tuple(
        LRSchedulerSpec(name=schedulers[p.instance][0], kwargs=schedulers[p.instance][1], epochs=p.epochs)
        for p in policies
        if p.kind == "lr_scheduler"
    )
    return DistillerSchedule(int(version), pruners, extensions, specs, policies, regularizers)
