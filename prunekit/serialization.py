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
from prunekit.report import PruneReport
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import plan_from_kept

__all__ = ["save", "load", "read_spec", "compose_kept", "FORMAT_VERSION"]

FORMAT_VERSION = 1
SPEC_FILE = "prunekit.json"
WEIGHTS_FILE = "weights.pt"


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
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-prunekit-")
    try:
        torch.save(model.state_dict(), os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, SPEC_FILE), "w") as f:
            json.dump(spec, f, indent=1)
        if os.path.exists(path):
            old = path + ".old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_spec(path: str) -> dict[str, Any]:
    spec_path = os.path.join(path, SPEC_FILE)
    if not os.path.isfile(spec_path):
        raise ConfigError(f"{spec_path} not found: is {path!r} a folder written by prunekit.save?", module=path)
    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get("format") != "prunekit-pruned-model":
        raise ConfigError(f"{spec_path} is not a prunekit model description", module=spec_path)
    if spec.get("version") != FORMAT_VERSION:
        raise ConfigError(
            f"{spec_path}: format version {spec.get('version')!r} is not supported (this prunekit reads {FORMAT_VERSION})",
            module=spec_path,
        )
    return spec


def load(path: str | os.PathLike, builder: Callable[..., nn.Module] | str | None = None) -> nn.Module:
    """Rebuilds a pruned model saved by :func:`save`.

    Args:
        path: the folder written by :func:`save`.
        builder: a callable returning the unpruned model (called with the saved builder
            kwargs), or a model spec string for :func:`prunekit.models.get_model`; default: the
            saved builder string.

    Raises:
        ConfigError: the folder is not a prunekit model, a layer it names does not exist in the
            rebuilt model, or a shape does not match.
    """
    path = os.fspath(path)
    spec = read_spec(path)
    kwargs = spec.get("builder_kwargs", {})
    builder = builder or spec.get("builder")
    if isinstance(builder, str):
        if not builder:
            raise ConfigError("load: no builder given and none saved; pass builder=<callable>", module="builder")
        from prunekit.models import get_model

        model = get_model(builder, **kwargs)
    elif callable(builder):
        model = builder(**kwargs)
    else:
        raise ConfigError(
            f"builder must be a callable or a model name, but got {type(builder).__name__}", module="builder"
        )
    names = {n for n, _ in model.named_modules()}
    for name in spec["layers"]:
        if name not in names:
            raise ConfigError(
                f"{path}: the saved cut names layer {name!r}, which the rebuilt model does not have", module=name
            )
    plan = plan_from_kept(spec["layers"], spec["params"])
    try:
        apply_plan(model, plan)
    except PrunekitError as exc:
        raise ConfigError(
            f"{path}: cannot replay the saved cut on the rebuilt model: {exc}", module=exc.module
        ) from exc
    state = torch.load(os.path.join(path, WEIGHTS_FILE), weights_only=True, map_location="cpu")
    own = model.state_dict()
    for key, shape in spec["shapes"].items():
        if key not in own:
            raise ConfigError(f"{path}: saved tensor {key!r} does not exist in the rebuilt model", module=key)
        if list(own[key].shape) != list(shape):
            raise ConfigError(
                f"{path}: {key} has shape {list(own[key].shape)} after replaying the cut, but was saved as {shape}",
                module=key,
            )
    model.load_state_dict(state)
    return model
