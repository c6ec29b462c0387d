"""Saving and loading pruned models as data: weights plus a versioned JSON of the cut.

``save(model, path, reports=...)`` writes a folder with ``weights.pt`` (a ``state_dict``, loaded
back with ``weights_only=True``) and ``prunekit.json``: the format version, the builder that makes
the original model, and per layer the kept indices (composed over every prune the model went
through) and the resulting shapes. ``load(path, builder)`` calls the builder, replays the cut with
the same layer rules the surgery uses, checks every shape and loads the weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError, PrunekitError
from prunekit.fileio import load_error_summary, umask_mode
from prunekit.models.registry import get_model, require_trusted_spec
from prunekit.report import PruneReport
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import plan_from_kept

__all__ = [
    "save",
    "load",
    "read_spec",
    "check_save_target",
    "compose_kept",
    "FORMAT_VERSION",
    "MAX_CLASSES",
    "MAX_IN_CHANNELS",
]

FORMAT_VERSION = 1
SPEC_FILE = "prunekit.json"
WEIGHTS_FILE = "weights.pt"
# builder_kwargs beyond these are refused before anything is built: a crafted prunekit.json must
# not make load() allocate terabytes
MAX_CLASSES = 1_000_000
MAX_IN_CHANNELS = 4096


def compose_kept(reports: Sequence[PruneReport]) -> tuple[dict, dict]:
    """Composes the kept indices of successive prunes into indices of the ORIGINAL dims."""
    kept: dict[str, dict[str, list[int]]] = {}
    params: dict[str, dict[int, list[int]]] = {}
    for report in reports:
        for name, roles in report.kept.items():
            for role, idx in roles.items():
                prev = kept.setdefault(name, {}).get(role)
                kept[name][role] = [prev[i] for i in idx] if prev is not None else list(idx)
        for tname, dims in report.kept_params.items():
            for dim, idx in dims.items():
                prev = params.setdefault(tname, {}).get(int(dim))
                params[tname][int(dim)] = [prev[i] for i in idx] if prev is not None else list(idx)
    return kept, params


def save(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    reports: PruneReport | Sequence[PruneReport],
    builder: str = "",
    builder_kwargs: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Writes ``model``'s weights and the description of its pruning to the folder ``path``.

    Args:
        model: the pruned model.
        path: a folder (created; replaced atomically if it exists).
        reports: the report of each prune the model went through, in order.
        builder: how to build the unpruned model, e.g. ``"torchvision:resnet50"`` (informative
            unless :func:`load` is given a string builder).
        builder_kwargs: keyword arguments for the builder.
        extra: anything else JSON-serialisable to keep (the resolved config, accuracies...).

    Note:
        The folder is written beside ``path`` and swapped in with two renames; a ``path.old``
        left by a process killed between them is removed by the next save. Files and folders
        that :func:`save` did not write are never replaced.

    Raises:
        ConfigError: ``path`` (or ``path.old``) is a file or a folder not written by :func:`save`.
    """
    reports = [reports] if isinstance(reports, PruneReport) else list(reports)
    kept, params = compose_kept(reports)
    spec = {
        "format": "prunekit-pruned-model",
        "version": FORMAT_VERSION,
        "builder": builder,
        "builder_kwargs": builder_kwargs or {},
        "layers": kept,
        "params": {t: {str(d): idx for d, idx in dims.items()} for t, dims in params.items()},
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    old = path + ".old"
    check_save_target(path)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-prunekit-")
    try:
        os.chmod(tmp, umask_mode(folder=True))
        torch.save(model.state_dict(), os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, SPEC_FILE), "w") as f:
            json.dump(spec, f, indent=1)
        # A kill between the two renames leaves `path.old` (and maybe no `path`): a stale copy of
        # a save that check_save_target has accepted, removed here so the swap can run again.
        if os.path.lexists(old):
            shutil.rmtree(old)
        if os.path.exists(path):
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_saved_folder(path: str) -> bool:
    """A folder this module wrote (or an empty one), which a save may replace."""
    return os.path.isdir(path) and (not os.listdir(path) or os.path.isfile(os.path.join(path, SPEC_FILE)))


def check_save_target(path: str | os.PathLike) -> None:
    """Raises :class:`ConfigError` unless :func:`save` can write the folder ``path``.

    ``path`` and the ``path.old`` a killed save may leave behind must each be absent or a
    folder written by :func:`save`; anything else (a file, a folder of the user's files) is
    never deleted. Call it before a long run, so a run does not fail at its very end.
    """
    path = os.fspath(path)
    for target in (path, path + ".old"):
        if os.path.lexists(target) and not _is_saved_folder(target):
            what = "a file" if not os.path.isdir(target) else f"a folder without {SPEC_FILE}"
            raise ConfigError(
                f"{target!r} is {what}; prunekit.save would replace it: move it away or save elsewhere",
                module=target,
            )


def read_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The checked ``prunekit.json`` of a folder written by :func:`save` (no code runs).

    Raises:
        ConfigError: the file is missing, unreadable, not JSON, or not a prunekit description.
    """
    path = os.fspath(path)
    spec_path = os.path.join(path, SPEC_FILE)
    if not os.path.isfile(spec_path):
        if not os.path.exists(path) and os.path.isfile(os.path.join(path + ".old", SPEC_FILE)):
            raise ConfigError(
                f"{path!r} does not exist, but {path + '.old'!r} does: a save into it was interrupted; "
                f"load {path + '.old'!r} (the model before that save) or save again",
                module=path,
            )
        raise ConfigError(f"{spec_path} not found: is {path!r} a folder written by prunekit.save?", module=path)
    try:
        with open(spec_path, "rb") as f:
            spec = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{spec_path} cannot be read as JSON: {exc}", module=spec_path) from None
    if not isinstance(spec, dict) or spec.get("format") != "prunekit-pruned-model":
        raise ConfigError(f"{spec_path} is not a prunekit model description", module=spec_path)
    if spec.get("version") != FORMAT_VERSION:
        raise ConfigError(
            f"{spec_path}: format version {spec.get('version')!r} is not supported (this prunekit reads {FORMAT_VERSION})",
            module=spec_path,
        )
    _check_spec_fields(spec, spec_path)
    return spec


def _check_spec_fields(spec: dict[str, Any], where: str) -> None:
    kinds = {"builder": str, "builder_kwargs": dict, "layers": dict, "params": dict, "shapes": dict, "extra": dict}
    for key, kind in kinds.items():
        if key in spec and spec[key] is not None and not isinstance(spec[key], kind):
            raise ConfigError(
                f"{where}: {key!r} must be a JSON {'string' if kind is str else 'object'}, "
                f"but got {type(spec[key]).__name__}",
                module=where,
            )
    kwargs = spec.get("builder_kwargs") or {}
    limits = {"num_classes": MAX_CLASSES, "in_channels": MAX_IN_CHANNELS}
    for key, value in kwargs.items():
        if key not in limits:
            raise ConfigError(
                f"{where}: builder_kwargs has unknown key {key!r} (allowed: {', '.join(limits)})", module=where
            )
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limits[key]:
            raise ConfigError(
                f"{where}: builder_kwargs.{key} must be an int in [1, {limits[key]}], but got {value!r}",
                module=where,
            )


def _build(builder: Callable[..., nn.Module] | str | None, kwargs: dict[str, Any]) -> nn.Module:
    """The unpruned model from a builder callable or a model spec string."""
    if isinstance(builder, str):
        if not builder:
            raise ConfigError("load: no builder given and none saved; pass builder=<callable>", module="builder")
        model = get_model(builder, **kwargs)
    elif callable(builder):
        model = builder(**kwargs)
    else:
        raise ConfigError(
            f"builder must be a callable or a model name, but got {type(builder).__name__}", module="builder"
        )
    if not isinstance(model, nn.Module):
        raise ConfigError(f"builder must return an nn.Module, but got {type(model).__name__}", module="builder")
    return model


def load(
    path: str | os.PathLike,
    builder: Callable[..., nn.Module] | str | None = None,
    *,
    trust_builder: bool = False,
) -> nn.Module:
    """Rebuilds a pruned model saved by :func:`save`.

    Loading is data-only: the weights are read with ``weights_only=True`` and a saved builder
    string is built only if it names a registry model (prunekit's, ``torchvision:``,
    ``timm:``). A ``module:function`` builder read from the folder would import and run code
    chosen by whoever wrote it, so it is refused unless ``trust_builder=True``.

    Args:
        path: the folder written by :func:`save`.
        builder: a callable returning the unpruned model (called with the saved builder
            kwargs), or a model spec string for :func:`prunekit.models.get_model`; default: the
            saved builder string. A builder given here is yours, so it is always trusted.
        trust_builder: build a saved ``module:function`` builder (imports and runs that code).

    Raises:
        UntrustedCodeError: the saved builder is an import path and ``trust_builder`` is False.
        ConfigError: the folder is not a prunekit model, its weights are missing or unreadable,
            a layer it names does not exist in the rebuilt model, or a shape does not match.
    """
    path = os.fspath(path)
    spec = read_spec(path)
    kwargs = spec.get("builder_kwargs") or {}
    if not builder:
        builder = spec.get("builder")
        require_trusted_spec(builder, trust_builder=trust_builder, where=os.path.join(path, SPEC_FILE))
    model = _build(builder, kwargs)
    names = {n for n, _ in model.named_modules()}
    for name in spec.get("layers", {}):
        if name not in names:
            raise ConfigError(
                f"{path}: the saved cut names layer {name!r}, which the rebuilt model does not have", module=name
            )
    try:
        plan = plan_from_kept(spec.get("layers", {}), spec.get("params", {}))
        apply_plan(model, plan)
    except PrunekitError as exc:
        raise ConfigError(
            f"{path}: cannot replay the saved cut on the rebuilt model: {exc}", module=exc.module
        ) from exc
    except (TypeError, ValueError, IndexError, KeyError, RuntimeError) as exc:  # a malformed cut in the file
        raise ConfigError(f"{path}: the saved cut in {SPEC_FILE} is malformed: {exc}", module=path) from exc
    weights = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise ConfigError(f"{weights} not found: the folder is incomplete", module=weights)
    try:
        state = torch.load(weights, weights_only=True, map_location="cpu")
    except Exception as exc:  # truncated, not a torch file, or a pickle that is not plain data
        raise ConfigError(f"{weights} cannot be read: {load_error_summary(exc)}", module=weights) from None
    if not isinstance(state, dict):
        raise ConfigError(f"{weights} holds {type(state).__name__}, not a state dict", module=weights)
    own = model.state_dict()
    for key, shape in spec.get("shapes", {}).items():
        if key not in own:
            raise ConfigError(f"{path}: saved tensor {key!r} does not exist in the rebuilt model", module=key)
        if list(own[key].shape) != list(shape):
            raise ConfigError(
                f"{path}: {key} has shape {list(own[key].shape)} after replaying the cut, but was saved as {shape}",
                module=key,
            )
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"{weights} does not fit the rebuilt model: {' '.join(first[:2])}", module=weights) from None
    return model
