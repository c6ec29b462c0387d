"""The ``--regularizer`` options of ``prunekit train`` and ``prune``: a ``sparsify`` phase.

``--regularizer group_lasso --reg-strength 5e-4 --reg-epochs 3`` adds a phase that trains with
the penalty (after ``train``'s epochs, before ``prune``'s cut). Only argparse is imported here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_regularizer_args", "regularizer_options", "sparsify_phase", "sparsify_phase_from_config"]


def add_regularizer_args(p: argparse.ArgumentParser, *, where: str) -> None:
    g = p.add_argument_group(f"sparsity training (a sparsify phase {where})")
    g.add_argument("--regularizer", help="group_lasso, slimming or greg (see prunekit list regularizers)")
    g.add_argument("--reg-strength", type=float, help="the penalty coefficient lambda (GReg: its ceiling)")
    g.add_argument("--reg-epochs", type=int, default=1, help="epochs of the sparsify phase (default 1)")
    g.add_argument("--reg-lr", type=float, help="peak learning rate of the sparsify phase (default: --lr)")
    g.add_argument(
        "--reg-threshold", type=float, default=1e-2, help="a channel norm under this counts as zero in the log"
    )
    g.add_argument(
        "--reg-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another option of the regularizer, e.g. delta=0.01, interval=5, sparsity=0.3 (GReg); repeatable",
    )


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def regularizer_options(args: argparse.Namespace, **defaults: Any) -> dict[str, Any]:
    """The keyword options of the regularizer: ``--reg-option`` pairs, then ``--reg-strength``;
    ``defaults`` fill what neither gives."""
    from prunekit.errors import ConfigError

    options: dict[str, Any] = {}
    for item in args.reg_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--reg-option: expected KEY=VALUE, but got {item!r}", module="--reg-option")
        options[key.strip().replace("-", "_")] = _value(value.strip())
    if args.reg_strength is not None:
        options["strength"] = args.reg_strength
    for key, value in defaults.items():
        options.setdefault(key, value)
    return options


def sparsify_phase(args: argparse.Namespace, options_from_args: Callable[..., Any], **defaults: Any) -> Any | None:
    """The sparsify :class:`~prunekit.pipeline.Phase` of ``--regularizer``, or None without it."""
    if not args.regularizer:
        return None
    from prunekit.cli.flags import flag_errors
    from prunekit.errors import ConfigError
    from prunekit.pipeline import Phase
    from prunekit.regularizers import get_regularizer

    if args.reg_epochs < 1:
        raise ConfigError(f"--reg-epochs: must be an int >= 1, but got {args.reg_epochs}", module="--reg-epochs")
    flags = {"regularizer": "--regularizer", "strength": "--reg-strength", "threshold": "--reg-threshold"}
    with flag_errors(flags):
        try:
            regularizer = get_regularizer(args.regularizer, **regularizer_options(args, **defaults))
        except TypeError as exc:  # an option the regularizer does not take
            raise ConfigError(f"--reg-option: {exc}", module="--reg-option") from None
        options = options_from_args(
            args, epochs=args.reg_epochs, lr=args.reg_lr if args.reg_lr is not None else args.lr
        )
        return Phase("sparsify", options, regularizer=regularizer, threshold=args.reg_threshold)


def sparsify_phase_from_config(
    config: Any, args: argparse.Namespace, options_from_args: Callable[..., Any], **defaults: Any
) -> Any:
    """The sparsify phase of a schedule file's ``sparsify:`` section (a ``SparsifyConfig``)."""
    from prunekit.pipeline import Phase

    lr = config.lr if config.lr is not None else args.lr
    options = options_from_args(args, epochs=config.epochs, lr=lr)
    return Phase("sparsify", options, regularizer=config.build(**defaults), threshold=config.threshold)
