"""``prunekit prune``: run a pruning schedule interleaved with training, then fine-tune."""

from __future__ import annotations

import argparse

from prunekit.cli._pipeline_args import add_data_args, add_run_args, add_train_args
from prunekit.cli._reg_args import add_regularizer_args, sparsify_phase, sparsify_phase_from_config
from prunekit.cli._sources import add_source_args

__all__ = ["register"]


def _recipe(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The recipe and its resolved description, from --schedule or the pruning options."""
    from prunekit.cli._pipeline_args import as_flags
    from prunekit.config import config_to_dict
    from prunekit.config.recipes import load_recipe, recipe_from_options

    if args.schedule:
        recipe = load_recipe(args.schedule, mode=args.mode)
        cfg = getattr(recipe, "config", None)
        described = config_to_dict(cfg) if cfg is not None and hasattr(cfg, "criterion") else {"file": args.schedule}
        return recipe, described
    options = dict(
        sparsity=args.sparsity,
        target_macs=args.target_macs,
        target_params=args.target_params,
        criterion=args.criterion,
        scope=args.scope,
        round_to=args.round_to,
        ignore=tuple(args.ignore),
        schedule=args.prune_schedule,
        start=args.prune_start,
        end=args.prune_end,
        steps=args.prune_steps,
        mode=args.mode or "physical",
    )
    flags = {"schedule.final": "--sparsity", "target_macs": "--target-macs", "target_params": "--target-params"}
    flags.update({k: f"--{k.replace('_', '-')}" for k in ("criterion", "scope", "round_to", "ignore", "mode")})
    flags.update({f"schedule.{k}": f"--prune-{k}" for k in ("kind", "start", "end", "steps")})
    with as_flags(flags):
        recipe = recipe_from_options(**options)
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
    sparsify = sparsify_phase(args, options_from_args, **greg_target(args))
    cfg = getattr(recipe, "config", None)
    if sparsify is None and getattr(cfg, "sparsify", None) is not None:  # the schedule file's section
        target = {}
        if cfg.sparsify.regularizer == "greg":  # by default it pushes the channels this prune cuts
            target = {"sparsity": cfg.schedule.final} if cfg.target is None else {}
            if cfg.target_macs is not None:
                target = {"target_macs": cfg.target_macs}
        sparsify = sparsify_phase_from_config(cfg.sparsify, args, options_from_args, **target)
    if sparsify is not None:
        phases.insert(0, sparsify)
    if args.finetune_epochs > 0:
        tune = options_from_args(args, epochs=args.finetune_epochs, lr=args.finetune_lr, **distill_options(args))
        phases.append(Phase("finetune", tune))
    config = {"command": "prune", "recipe": described}
    return run_from_args(args, source, phases, loaders, config=config, initial_state=state, report=not args.no_report)


def greg_target(args: argparse.Namespace) -> dict:
    """GReg pushes the channels the prune will cut: unless --reg-option says otherwise, at the
    prune's own --sparsity or --target-macs."""
    given = {o.partition("=")[0].strip().replace("-", "_") for o in args.reg_option}
    if args.regularizer != "greg" or {"sparsity", "target_macs"} & given:
        return {}
    if args.sparsity is not None:
        return {"sparsity": args.sparsity}
    return {"target_macs": args.target_macs} if args.target_macs is not None else {}


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
    g = p.add_argument_group("what to prune (one of)").add_mutually_exclusive_group(required=True)
    g.add_argument("--schedule", help="a YAML schedule file (prunekit's schema or Distiller's)")
    g.add_argument("--sparsity", type=float, help="fraction of channels to remove from each group")
    g.add_argument("--target-macs", type=float, help="fraction of the MACs to keep, e.g. 0.5")
    g.add_argument("--target-params", type=float, help="fraction of the parameters to keep")
    o = p.add_argument_group("pruning options (without --schedule)")
    o.add_argument("--criterion", default="l1", help="see prunekit list criteria (default l1)")
    o.add_argument("--scope", choices=("local", "global"), default="local", help="default local")
    o.add_argument("--round-to", type=int, default=1, help="keep channel counts multiples of this")
    o.add_argument("--ignore", nargs="*", default=[], help="module names whose output channels are kept")
    o.add_argument("--prune-schedule", choices=("one_shot", "iterative", "agp"), default="one_shot")
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
    add_regularizer_args(p, where="before the prune")
    add_data_args(p)
    add_run_args(p)
    p.add_argument("--no-report", action="store_true", help="do not write report/")
    p.set_defaults(func=_run)
