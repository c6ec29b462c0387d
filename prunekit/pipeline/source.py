"""``ModelSource``: how a run builds its starting model, kept as data in every checkpoint.

Resuming a run calls :meth:`ModelSource.build` and then replays the pruning decisions taken so
far, so the architecture of a checkpoint is always rebuilt from its constructor, never unpickled.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.models.registry import get_model, require_trusted_spec
from prunekit.report import PruneReport
from prunekit.serialization import SPEC_FILE, load, read_spec

__all__ = ["ModelSource"]


@dataclass(frozen=True)
class ModelSource:
    """A model spec (:func:`prunekit.models.get_model`), or a folder written by :func:`prunekit.save`.

    Attributes:
        spec: e.g. ``"resnet20"`` or ``"torchvision:resnet18"``; for ``saved`` the builder read
            from the folder.
        num_classes, in_channels: builder arguments.
        saved: a folder written by :func:`prunekit.save`: its cut is replayed and its weights
            loaded by :func:`prunekit.load`.
    """

    spec: str
    num_classes: int = 10
    in_channels: int = 3
    saved: str | None = None

    @classmethod
    def from_saved(cls, path: str | os.PathLike[str], *, trust_builder: bool = False) -> ModelSource:
        """The source of a pruned model saved with :func:`prunekit.save` (builder read from it).

        Raises:
            UntrustedCodeError: the saved builder is a ``module:function`` import path and
                ``trust_builder`` is False (see :func:`prunekit.load`).
        """
        path = os.fspath(path)
        spec = read_spec(path)
        kwargs = spec.get("builder_kwargs") or {}
        if not spec.get("builder"):
            raise ConfigError(f"{path}: the saved model names no builder, so it cannot be rebuilt", module=path)
        require_trusted_spec(spec["builder"], trust_builder=trust_builder, where=os.path.join(path, SPEC_FILE))
        return cls(
            spec=spec["builder"],
            num_classes=int(kwargs.get("num_classes", 10)),
            in_channels=int(kwargs.get("in_channels", 3)),
            saved=os.path.abspath(path),
        )

    @property
    def builder_kwargs(self) -> dict[str, int]:
        return {"num_classes": self.num_classes, "in_channels": self.in_channels}

    def build(self) -> nn.Module:
        """A new model: fresh from the builder, or the saved pruned one with its weights."""
        if self.saved is not None:
            # self.spec was checked when this source was read from a file (from_saved, from_dict)
            return load(self.saved, self.spec)
        return get_model(self.spec, **self.builder_kwargs)

    def base_reports(self) -> list[PruneReport]:
        """The cut a saved model already carries (one report in the builder's dims), else []."""
        if self.saved is None:
            return []
        spec = read_spec(self.saved)
        kept_params = {t: {int(d): i for d, i in dims.items()} for t, dims in spec.get("params", {}).items()}
        return [PruneReport(kept=spec.get("layers", {}), kept_params=kept_params)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, trust_builder: bool = False, where: str = "checkpoint") -> ModelSource:
        """Inverse of :meth:`to_dict`, for data read from a checkpoint ``where``.

        Raises:
            ConfigError: ``data`` is not a model source.
            UntrustedCodeError: its spec is a ``module:function`` import path and
                ``trust_builder`` is False.
        """
        fields = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or not set(data) <= fields or "spec" not in data:
            raise ConfigError(f"{where}: 'source' is not a model source", module=where)
        if not isinstance(data["spec"], str) or any(
            not isinstance(data.get(k, 1), int) or isinstance(data.get(k), bool) for k in ("num_classes", "in_channels")
        ):
            raise ConfigError(f"{where}: 'source' holds values of the wrong type", module=where)
        require_trusted_spec(data["spec"], trust_builder=trust_builder, where=where)
        return cls(**data)
