"""``prunekit list criteria|regularizers|rules|models|schedules|latency-backends``: what is registered."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if args.what == "criteria":
        from prunekit.criteria import CRITERIA

        for name in CRITERIA.names():
            print(f"{name:18s} {CRITERIA.describe(name)}")
    elif args.what == "models":
        from prunekit.models import list_models

        for name, description in list_models().items():
            print(f"{name:18s} {description}")
        print("Also: torchvision:NAME, timm:NAME (with timm installed), package.module:function")
    elif args.what == "regularizers":
        from prunekit.regularizers import REGULARIZERS

        for name in REGULARIZERS.names():
            print(f"{name:18s} {REGULARIZERS.describe(name)}")
    elif args.what == "schedules":
        from prunekit.schedules import SCHEDULES

        for name in SCHEDULES.names():
            print(f"{name:18s} {SCHEDULES.describe(name)}")
    elif args.what == "latency-backends":
        from prunekit.latency import LATENCY_BACKENDS

        for name in LATENCY_BACKENDS.names():
            why = LATENCY_BACKENDS.get(name).available()
            print(f"{name:18s} {LATENCY_BACKENDS.describe(name)}" + (f" [unavailable: {why}]" if why else ""))
    else:
        from prunekit.rules import registered_rules

        for cls, rule in sorted(registered_rules().items(), key=lambda kv: kv[0].__name__):
            print(f"{cls.__module__}.{cls.__name__:24s} {type(rule).__name__}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list", help="list registered criteria, regularizers, models, schedules, layer rules or latency backends"
    )
    p.add_argument("what", choices=["criteria", "regularizers", "models", "schedules", "rules", "latency-backends"])
    p.set_defaults(func=_run)
