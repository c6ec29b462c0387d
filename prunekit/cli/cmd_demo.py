"""``prunekit demo``: the job behind ``make demo``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from prunekit.demo import main as demo_main

    return demo_main(args.rest)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo (see prunekit demo --help)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the demo")
    p.set_defaults(func=_run)
