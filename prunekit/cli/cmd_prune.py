"""``prunekit prune``: run a pruning schedule interleaved with training, then fine-tune."""

from __future__ import annotations

import argparse

from prunekit.cli._pipeline_args import add_data_args, add_run_args, add_train_args
from prunekit.cli._sources import add_source_args
from prunekit.cli.flags import add_option_flags, flag_errors, given_options

__all__ = ["register"]


AMOUNTS = ("sparsity", "target_macs", "target_params", "target_latency")
# every other PruneOptions field with a flag (those whose metadata gives none are YAML-only)
OPTIONS = (
    "criterion", "scope", "round_to", "ignore", "exact_only", "max_group_sparsity", "tracer",
    "latency_backend", "latency_batch", "latency_threads", "report_latency", "latency_allocation",
)  # fmt: skip
SCHEDULE_FLAGS = {"schedule.kind": "--prune-schedule", "schedule.final": "--sparsity"}
SCHEDULE_FLAGS.update({f"schedule.{k}": f"--prune-{k}" for k in ("start", "end", "steps")})


def _recipe(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The recipe and its resolved description, from --schedule or the pruning options."""
    from prunekit.config import config_to_dict
    from prunekit.engine import option_flags
    from prunekit.recipes import load_recipe, recipe_from_options

    if args.schedule:
        recipe = load_recipe(args.schedule, mode=args.mode)
        cfg = getattr(recipe, "config", None)
        described = config_to_dict(cfg) if cfg is not None and hasattr(cfg, "criterion") else {"file": args.schedule}
        return recipe, described
    options = given_options(args, AMOUNTS + OPTIONS)
    timing = dict(start=args.prune_start, end=args.prune_end, steps=args.prune_steps)
    with flag_errors({**option_flags(), **SCHEDULE_FLAGS, "mode": "--mode"}):
        recipe = recipe_from_options(schedule=args.prune_schedule, mode=args.mode or "physical", **options, **timing)
    return recipe, config_to_dict(recipe.config)  # type: ignore[attr-defined]  # a ScheduleRecipe


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._pipeline_args import loaders_from_args, options_from_args, run_from_args, setup_logging
    from prunekit.cli._sources import source_from_args
    from prunekit.pipeline import Phase

    setup_logging(args)
    recipe, described = _recipe(args)
    loaders = loaders_from_args(args)
    source, state = source_from_args(args, loaders[0].dataset)
    epochs = args.epochs if args.epochs is not None else (recipe.num_epochs if recipe.num_epochs > 1 else 0)
    phases = [Phase("prune", options_from_args(args, epochs=epochs), recipe)]
    if args.finetune_epochs > 0:
        tune = options_from_args(args, epochs=args.finetune_epochs, lr=args.finetune_lr, **distill_options(args))
        phases.append(Phase("finetune", tune))
    config = {"command": "prune", "recipe": described}
    return run_from_args(args, source, phases, loaders, config=config, initial_state=state, report=not args.no_report)


def distill_options(args: argparse.Namespace) -> dict:
    """The TrainOptions fields of the --distill options."""
    return dict(distill=args.distill, distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature)


def add_distill_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("knowledge distillation (Hinton et al. 2015)")
    g.add_argument("--distill", action="store_true", help="fine-tune with KD from the unpruned model")
    g.add_argument("--distill-alpha", type=float, default=0.5, help="weight of the KL term (default 0.5)")
    g.add_argument("--distill-temperature", type=float, default=4.0, help="softmax temperature (default 4)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prune",
        help="prune with a YAML schedule or options, interleaved with training, then fine-tune",
        description="Prunes a model following --schedule FILE (prunekit's schema or Distiller's) or the options "
        "below (one-shot by default), training between pruning steps, then fine-tunes (optionally distilling from "
        "the unpruned model). Writes checkpoint.pt, history.csv, config.json, model/, original/ and report/ to --out.",
    )
    add_source_args(p)
    from prunekit.engine import PruneOptions  # the flags are derived from its fields
    from prunekit.schedules import SCHEDULES

    g = p.add_argument_group("what to prune (one of)").add_mutually_exclusive_group(required=True)
    g.add_argument("--schedule", help="a YAML schedule file (prunekit's schema or Distiller's)")
    add_option_flags(g, PruneOptions, AMOUNTS)
    o = p.add_argument_group("pruning options (without --schedule)")
    add_option_flags(o, PruneOptions, OPTIONS)
    o.add_argument("--prune-schedule", choices=SCHEDULES.names(), default="one_shot", help="the schedule kind")
    o.add_argument("--prune-start", type=int, default=0, help="epoch of the first pruning step")
    o.add_argument("--prune-end", type=int, default=1, help="epoch of the last step (iterative, agp)")
    o.add_argument("--prune-steps", type=int, default=1, help="number of steps (iterative)")
    o.add_argument("--mode", choices=("physical", "masked"), help="cut at each step, or mask and cut at the end")
    add_train_args(
        p,
        epochs=None,
        lr=0.01,
        title="training during pruning",
        epochs_help="epochs of the pruning phase (default: the schedule's epochs if it spans several, "
        "with training between steps; 0 for a one-shot prune, which is then only fine-tuned)",
    )
    add_train_args(p, epochs=10, lr=0.01, prefix="finetune-", title="fine-tuning")
    add_distill_args(p)
    add_data_args(p)
    add_run_args(p)
    p.add_argument("--no-report", action="store_true", help="do not write report/")
    p.set_defaults(func=_run)
