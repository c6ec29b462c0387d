"""Models from files for ``prunekit report`` and ``prunekit export``: saved folders, checkpoints, specs.

The saved folder (from :func:`prunekit.save`) names its builder and keyword arguments; the model
before pruning is built from them, and its example input shape comes from ``--input-shape`` or
the folder's ``extra.input_shape`` (write it with ``prunekit.save(..., extra={"input_shape":
[1, 1, 28, 28]})``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.fileio import load_error_summary

__all__ = ["read_saved", "load_saved", "load_before", "example_input"]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")


def read_saved(path: str, *, option: str) -> dict[str, Any]:
    """The ``prunekit.json`` of a folder written by :func:`prunekit.save` (``option`` names the flag)."""
    from prunekit.serialization import read_spec

    if not os.path.isdir(path):
        raise ConfigError(f"{option}: {path!r} is not a folder (give one written by prunekit.save)", module=option)
    return read_spec(path)


def load_saved(path: str, builder: str | None, *, option: str, trust_builder: bool = False) -> nn.Module:
    """:func:`prunekit.load` of ``path`` in eval mode, with ``builder`` or the saved builder name."""
    from prunekit.serialization import load

    read_saved(path, option=option)
    return load(path, builder, trust_builder=trust_builder).eval()


def _state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The model weights in a loaded checkpoint: a state dict, or one under a usual key."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {k.removeprefix("module."): v for k, v in obj.items()}  # DistributedDataParallel prefix
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict", "model_state"):
            if key in obj and (found := _state_dict(obj[key])) is not None:
                return found
    return None


def load_before(
    source: str, spec: dict[str, Any], *, option: str = "--before", trust_builder: bool = False
) -> nn.Module:
    """The model before pruning, from a saved folder, a checkpoint file, or a model spec.

    A checkpoint's weights are loaded into the saved builder's unpruned model; a model spec
    (``resnet20``, ``torchvision:resnet18``...) is built with the saved builder keyword arguments.
    """
    from prunekit.models.registry import get_model, require_trusted_spec
    from prunekit.serialization import SPEC_FILE

    path = Path(source)
    if path.is_dir() and (path / SPEC_FILE).is_file():
        return load_saved(source, None, option=option, trust_builder=trust_builder)
    kwargs = spec.get("builder_kwargs") or {}
    if path.is_file():
        if not spec.get("builder"):
            raise ConfigError(f"{option}: the saved model names no builder to load {source!r} into", module=option)
        try:
            state = _state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # a truncated file or a foreign pickle: name the file
            raise ConfigError(
                f"{option}: cannot read {source!r} as a checkpoint: {load_error_summary(exc)}", module=option
            ) from None
        if state is None:
            raise ConfigError(f"{option}: {source!r} holds no model state dict", module=option)
        require_trusted_spec(spec["builder"], trust_builder=trust_builder, where=option)
        model = get_model(spec["builder"], **kwargs)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(
                f"{option}: the weights in {source!r} do not fit the unpruned {spec['builder']!r}: {exc}", module=option
            ) from exc
        return model.eval()
    if path.exists():
        raise ConfigError(
            f"{option}: {source!r} is a folder without {SPEC_FILE} (not written by prunekit.save)", module=option
        )
    if path.suffix in _CHECKPOINT_SUFFIXES or os.sep in source:
        raise ConfigError(
            f"{option}: {source!r} does not exist (give a checkpoint, a folder from prunekit.save or a model name)",
            module=option,
        )
    return get_model(source, **kwargs).eval()


def example_input(shape: str | None, spec: dict[str, Any], *, where: str) -> torch.Tensor:
    """A random input of ``shape`` ("1,1,28,28"), or of the saved ``extra.input_shape``."""
    if shape is None:
        saved = (spec.get("extra") or {}).get("input_shape")
        if not saved:
            raise ConfigError(
                f"--input-shape is required: {where} does not store extra.input_shape (e.g. --input-shape 1,1,28,28)",
                module="--input-shape",
            )
        dims = list(saved)
    else:
        try:
            dims = [int(d) for d in shape.replace("x", ",").split(",")]
        except ValueError:
            dims = []
        if not dims or any(d <= 0 for d in dims):
            raise ConfigError(
                f"--input-shape must be positive integers separated by commas (e.g. 1,1,28,28), but got {shape!r}",
                module="--input-shape",
            )
    return torch.randn(*[int(d) for d in dims], generator=torch.Generator().manual_seed(0))
