"""``prunekit prune``: run a pruning schedule interleaved with training, then fine-tune."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from prunekit.cli._pipeline_args import add_data_args, add_run_args, add_train_args
from prunekit.cli._reg_args import add_regularizer_args, sparsify_phase, sparsify_phase_from_config
from prunekit.cli._sources import add_source_args
from prunekit.cli.flags import add_option_flags, flag_errors, given_options

__all__ = ["register"]

log = logging.getLogger("prunekit.cli")


AMOUNTS = ("sparsity", "target_macs", "target_params", "target_latency")
# every other PruneOptions field with a flag (those whose metadata gives none are YAML-only)
OPTIONS = (
    "criterion", "scope", "round_to", "ignore", "exact_only", "max_group_sparsity", "remove_branches", "tracer",
    "latency_backend", "latency_batch", "latency_threads", "report_latency", "latency_allocation", "latency_balance",
    "allocation_candidates", "allocation_batches", "allocation_steps", "allocation_lr",
)  # fmt: skip
SCHEDULE_FLAGS = {"schedule.kind": "--prune-schedule", "schedule.final": "--sparsity"}
SCHEDULE_FLAGS.update({f"schedule.{k}": f"--prune-{k}" for k in ("start", "end", "steps")})


def _recipe(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The recipe and its resolved description, from --schedule or the pruning options."""
    from prunekit.config import config_to_dict
    from prunekit.engine import option_flags
    from prunekit.errors import ConfigError
    from prunekit.recipes import load_recipe, recipe_from_options

    if args.schedule:
        recipe = load_recipe(args.schedule, mode=args.mode)
        cfg = getattr(recipe, "config", None)
        described = config_to_dict(cfg) if cfg is not None and hasattr(cfg, "criterion") else {"file": args.schedule}
        if args.shorten is not None:
            recipe = _shortened(recipe, args.shorten)
            described["shortened_to"] = args.shorten
        return recipe, described
    if args.shorten is not None:
        raise ConfigError("--shorten: scales a Distiller --schedule file; there is none", module="--shorten")
    options = given_options(args, AMOUNTS + OPTIONS)
    timing = dict(start=args.prune_start, end=args.prune_end, steps=args.prune_steps)
    with flag_errors({**option_flags(), **SCHEDULE_FLAGS, "mode": "--mode"}):
        recipe = recipe_from_options(schedule=args.prune_schedule, mode=args.mode or "physical", **options, **timing)
    return recipe, config_to_dict(recipe.config)  # type: ignore[attr-defined]  # a ScheduleRecipe


def _shortened(recipe: Any, epochs: int) -> Any:
    """``--shorten N``: the Distiller schedule with all its epochs scaled into ``N``."""
    from prunekit.compat.distiller import DistillerRecipe
    from prunekit.compat.distiller.shorten import shorten
    from prunekit.errors import ConfigError

    if not isinstance(recipe, DistillerRecipe):
        raise ConfigError("--shorten: scales Distiller schedule files, not prunekit's schema", module="--shorten")
    short = DistillerRecipe(shorten(recipe.schedule, epochs))
    log.info(
        "--shorten %d: the file's %d epochs scaled into %d (a dry run: less training between its steps)",
        epochs, recipe.run_epochs, short.run_epochs,
    )  # fmt: skip
    return short


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._pipeline_args import loaders_from_args, options_from_args, run_from_args, setup_logging
    from prunekit.cli._sources import source_from_args
    from prunekit.compat.distiller import DistillerRecipe
    from prunekit.pipeline import Phase

    setup_logging(args)
    recipe, described = _recipe(args)
    loaders = loaders_from_args(args)
    source, state = source_from_args(args, loaders[0].dataset)
    if isinstance(recipe, DistillerRecipe):
        epochs, args.finetune_epochs = distiller_epochs(args, recipe)
    else:
        epochs = args.epochs if args.epochs is not None else (recipe.num_epochs if recipe.num_epochs > 1 else 0)
        args.finetune_epochs = 10 if args.finetune_epochs is None else args.finetune_epochs
        args.lr_schedule = "cosine" if args.lr_schedule is None else args.lr_schedule
    phases = [Phase("prune", options_from_args(args, epochs=epochs), recipe)]
    sparsify = sparsify_phase(args, options_from_args, **greg_target(args))
    cfg = getattr(recipe, "config", None)
    if sparsify is None and cfg is not None and getattr(cfg, "sparsify", None) is not None:  # the file's section
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
    try:
        return run_from_args(
            args, source, phases, loaders, config=config, initial_state=state, report=not args.no_report
        )
    except RuntimeError as exc:
        if "too small" not in str(exc) and "greater than actual input size" not in str(exc):
            raise
        raise _input_too_small(args, source, loaders[0].dataset) from exc


def _input_too_small(args: argparse.Namespace, source: Any, data: Any) -> Exception:
    """The error for a model whose pooling shrinks the data's images to nothing (torchvision's
    AlexNet and VGG on 28x28 images): names the model, its smallest input and ``--image-size``."""
    import torch

    from prunekit.errors import ConfigError

    model = source.build().eval()

    def fits(size: int) -> bool:
        try:
            with torch.no_grad():
                model(torch.zeros(1, source.in_channels, size, size))
        except RuntimeError:
            return False
        return True

    low, high = 1, 512  # the smallest size that fits, by bisection (the models here are monotone)
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    size = getattr(data, "image_size", None)
    given = f"{size[0]}x{size[1]}" if isinstance(size, tuple) else "smaller"
    return ConfigError(
        f"--model: {source.spec} needs images of at least {low}x{low}, but --data {args.data} gives {given}; "
        f"use an image-folder dataset with --image-size {max(low, 32)} or more (e.g. 224), or a model made for "
        "small images (resnet20, vgg16_bn: see prunekit list models)",
        module="--model",
    )


def distiller_epochs(args: argparse.Namespace, recipe: Any) -> tuple[int, int]:
    """``(prune-phase epochs, fine-tune epochs)`` for a Distiller schedule.

    Distiller runs a schedule file as one training whose policies (pruners, thinning and
    ``lr_schedulers``) act over all of it, so the prune phase lasts the file's span (``--epochs``
    overrides it) and there is no separate fine-tuning unless ``--finetune-epochs`` asks for it.
    """
    span = recipe.run_epochs
    epochs = span if args.epochs is None else args.epochs
    if args.lr_schedule is None:  # Distiller keeps the LR constant where no lr_scheduler acts
        args.lr_schedule = "constant"
    finetune = 0 if args.finetune_epochs is None else args.finetune_epochs
    lr = ", ".join(f"{s.name} at epochs {s.epochs[0]}..{s.epochs[-1]}" for s in recipe.lr_schedulers)
    log.info(
        "Distiller schedule: one run of %d epochs (the file spans %d); LR: %s", max(epochs, recipe.num_epochs), span,
        lr or f"the file has no lr_schedulers, so --lr-schedule {args.lr_schedule} over the run",
    )  # fmt: skip
    if recipe.lr_schedulers and epochs < span:
        log.warning(
            "--epochs %d is shorter than the file's %d epochs: its lr_schedulers act only inside them%s",
            epochs, span, " (none: --epochs 0 trains nothing)" if epochs == 0 else "",
        )  # fmt: skip
    if finetune:
        log.warning(
            "--finetune-epochs %d: after the file's run, %d more epochs with prunekit's --lr-schedule %s "
            "(Distiller has no such phase); element-wise masks are kept",
            finetune, finetune, args.lr_schedule,
        )  # fmt: skip
    return epochs, finetune


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
    o.add_argument(
        "--shorten",
        type=int,
        metavar="N",
        help="Distiller schedules: scale all the file's epochs (pruners, thinning, LR policies) into N epochs, "
        "to dry-run a long schedule in minutes (with --max-batches for a subset of the data)",
    )
    add_train_args(
        p,
        epochs=None,
        lr=0.01,
        title="training during pruning",
        epochs_help="epochs of the pruning phase (default: the schedule's epochs if it spans several, "
        "with training between steps; 0 for a one-shot prune, which is then only fine-tuned; for a Distiller "
        "schedule, the file's span, lr_scheduler policies included)",
    )
    # None: cosine, or constant for a Distiller schedule without lr_schedulers (Distiller's behaviour)
    p.set_defaults(lr_schedule=None)
    add_train_args(
        p,
        epochs=None,
        lr=0.01,
        prefix="finetune-",
        title="fine-tuning",
        epochs_help="epochs of fine-tuning after the pruning phase (default 10; 0 for a Distiller schedule, "
        "whose file describes the whole run)",
    )
    add_distill_args(p)
    add_regularizer_args(p, where="before the prune")
    add_data_args(p)
    add_run_args(p)
    p.add_argument("--no-report", action="store_true", help="do not write report/")
    p.set_defaults(func=_run)
