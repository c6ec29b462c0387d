"""Command-line flags derived from the options dataclasses, and errors that name the flag.

A :class:`~prunekit.engine.PruneOptions` field carries its help text and argparse settings in its
``metadata`` (see :mod:`prunekit.engine.options`), so a new option appears on the command line
with no edit here. Errors raised while an options object is built carry ``module`` (the field)
and ``detail`` (what is wrong); :func:`flag_errors` re-raises them as ``--flag: detail``.

Only argparse and the standard library are imported at module level (``prunekit --help`` stays
instant): the options classes are passed in by the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["add_option_flags", "given_options", "flag_of", "flag_errors"]


def flag_of(f: dataclasses.Field) -> str | None:  # type: ignore[type-arg]
    """The flag of an options field: its ``metadata["flag"]``, ``--field-name`` when that is
    empty, ``None`` for a field with no flag."""
    flag = f.metadata.get("flag", "")
    if flag is None:
        return None
    return flag or "--" + f.name.replace("_", "-")


def add_option_flags(group: Any, cls: type, names: Iterable[str]) -> dict[str, str]:
    """Adds a flag for each field of ``cls`` in ``names`` to ``group`` (a parser or argument
    group); the defaults stay ``None`` so :func:`given_options` passes only what was typed.
    Returns field name -> flag."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for name in names:
        f = fields[name]
        flag = flag_of(f)
        if flag is None:
            continue
        kwargs = dict(f.metadata.get("argparse", {}))
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f" (default {default})" if default not in (None, (), False) else ""
        group.add_argument(flag, dest=name, default=None, help=f.metadata.get("help", "") + shown, **kwargs)
        out[name] = flag
    return out


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that were given on the command line (not ``None``)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


@contextlib.contextmanager
def flag_errors(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raises an error about field ``f`` (its ``module``) as ``"<flags[f]>: <detail>"``, so
    the message names the option the user typed (``schedule.final`` -> ``--sparsity``)."""
    from prunekit.errors import PrunekitError

    try:
        yield
    except PrunekitError as exc:
        flag = flags.get(exc.module or "")
        if flag is None or exc.detail is None:
            raise
        raise type(exc)(f"{flag}: {exc.detail}", module=flag, detail=exc.detail) from exc
