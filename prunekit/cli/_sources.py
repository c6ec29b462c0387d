"""Where ``prunekit prune``/``finetune``/``eval`` take their model from: a model spec, a
``prunekit train`` checkpoint, or a folder written by :func:`prunekit.save`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_source_args", "add_trust_arg", "source_from_args"]


def add_trust_arg(p: argparse.ArgumentParser) -> None:
    """``--trust-builder``: the opt-in to run code that a saved folder or checkpoint names."""
    p.add_argument(
        "--trust-builder",
        action="store_true",
        help="build a module:function builder named by a saved folder or checkpoint; this imports and runs "
        "that code (default: only prunekit, torchvision: and timm: models are built from files)",
    )


def add_source_args(p: argparse.ArgumentParser, *, spec: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    if spec:
        g.add_argument("--model", help="a model spec (resnet20, torchvision:resnet18, ...): random weights")
    g.add_argument("--checkpoint", help="a prunekit checkpoint (checkpoint.pt or the run folder holding it)")
    g.add_argument("--model-dir", help="a folder written by prunekit.save (e.g. OUT/model of a prune run)")
    add_trust_arg(p)


def source_from_args(args: argparse.Namespace, data: Any) -> tuple[Any, dict[str, Any] | None]:
    """``(ModelSource, initial weights or None)``; the model must fit the data's classes/channels."""
    from prunekit.errors import ConfigError
    from prunekit.pipeline import ModelSource, load_checkpoint

    state = None
    trust = bool(getattr(args, "trust_builder", False))
    if getattr(args, "model", None):
        source = ModelSource(args.model, num_classes=data.num_classes, in_channels=data.in_channels)
        option = "--model"
    elif getattr(args, "checkpoint", None):
        ckpt = load_checkpoint(args.checkpoint)
        if ckpt["decisions"]:
            raise ConfigError(
                f"--checkpoint: {args.checkpoint!r} holds a model pruned during its run; give that run's "
                "saved model with --model-dir OUT/model instead",
                module="--checkpoint",
            )
        source, state, option = (
            ModelSource.from_dict(ckpt["source"], trust_builder=trust, where=f"--checkpoint {args.checkpoint}"),
            ckpt["model"],
            "--checkpoint",
        )
    else:
        source, option = ModelSource.from_saved(args.model_dir, trust_builder=trust), "--model-dir"
    if (source.num_classes, source.in_channels) != (data.num_classes, data.in_channels):
        raise ConfigError(
            f"{option}: the model has {source.num_classes} classes and {source.in_channels} input channels, but "
            f"--data {args.data} has {data.num_classes} and {data.in_channels}",
            module=option,
        )
    return source, state
