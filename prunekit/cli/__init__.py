"""The ``prunekit`` command line: a thin layer over the Python API.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func``. Registering must stay cheap (argparse only): heavy
imports happen inside the command functions, so ``prunekit --help`` is instant.

Exit codes: 0 success, 1 a failed check (e.g. an equivalence or accuracy check), 2 bad input
(argparse errors, every :class:`~prunekit.errors.PrunekitError`, whose message names the
option, YAML path or layer, and an ``OSError`` such as a full disk, which names the file),
130 Ctrl-C (one line, no traceback). Each error is one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "COMMANDS"]

# Module names (in this package) in the order ``prunekit --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "cmd_list",
    "cmd_graph",
    "cmd_train",
    "cmd_prune",
    "cmd_finetune",
    "cmd_eval",
    "cmd_demo",
    "cmd_report",
    "cmd_export",
    "cmd_sensitivity",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="prunekit", description="Structured pruning that removes channels for real.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand; returns the process exit code."""
    args = build_parser().parse_args(argv)
    from prunekit.errors import PrunekitError

    try:
        return int(args.func(args))
    except PrunekitError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a full disk, a read-only or unwritable path: name the file, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        resumable = getattr(args, "out", None) and hasattr(args, "resume")
        hint = "; resume with --resume" if resumable else ""
        print(f"\nprunekit: interrupted{hint}", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    """Prints a user error on one line (newlines folded into spaces) and returns exit code 2."""
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: keep the original message
        last = [line for line in message.splitlines() if line.strip()][-1]
        message = last.split(": ", 1)[1] if last.startswith("prunekit.errors.") and ": " in last else last
    line = " ".join(message.split()) or "unknown error"
    print(f"prunekit: error: {line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
