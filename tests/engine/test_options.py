"""``PruneOptions``: one options object, validated once, from which the YAML schema and the CLI
flags are derived; keyword arguments are sugar that build it."""

from __future__ import annotations

import argparse
import copy
import dataclasses

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.cli.flags import add_option_flags, flag_errors, given_options
from prunekit.config import PruneConfig, ScheduleConfig, config_to_dict, load_config
from prunekit.engine import Override, PruneOptions, option_flags, resolve_options
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.schedules import SCHEDULES


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))


def test_keyword_sugar_builds_the_same_options():
    opts = PruneOptions(sparsity=0.5, round_to=2, overrides={"0": 0.25})
    assert resolve_options(sparsity=0.5, round_to=2, overrides={"0": 0.25}) == opts
    assert opts.overrides == (Override("0", 0.25),)
    assert resolve_options(opts, round_to=4).round_to == 4 and opts.round_to == 2  # frozen: a copy


def test_prune_with_an_options_object_equals_keywords():
    torch.manual_seed(0)
    a, x = _net(), torch.randn(1, 3, 8, 8)
    b = copy.deepcopy(a)
    ra = prunekit.prune_(a, x, PruneOptions(sparsity=0.5))
    rb = prunekit.prune_(b, x, sparsity=0.5)
    assert ra.kept == rb.kept and a[0].out_channels == b[0].out_channels == 4


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"sparsity": 0.5, "target_macs": 0.5}, "give exactly one"),
        ({"round_to": 0}, "round_to must be an int >= 1, but got 0"),
        ({"scope": "globl"}, "scope must be 'local' or 'global', but got 'globl'"),
        (
            {"tracer": "fxx"},
            "tracer must be one of 'auto', 'fx', 'export', 'record', but got 'fxx'; did you mean 'fx'?",
        ),
        ({"roundto": 2}, "roundto is not a pruning option; did you mean 'round_to'?"),
        ({"max_group_sparsity": float("nan")}, "max_group_sparsity must be a number in [0, 1)"),
    ],
)
def test_bad_options_name_the_option(kwargs, needle):
    with pytest.raises(ConfigError) as info:
        resolve_options(**kwargs)
    assert needle in str(info.value)
    assert info.value.module == next(iter(kwargs)) or "exactly one" in needle


def test_unknown_criterion_is_an_unknown_name():
    with pytest.raises(UnknownNameError, match="did you mean 'l1'"):
        PruneOptions(criterion="l11")


def test_every_option_is_a_yaml_key_unless_marked():
    yaml_keys = {f.name for f in dataclasses.fields(PruneConfig) if f.metadata.get("yaml", True)}
    for f in dataclasses.fields(PruneOptions):
        assert (f.name in yaml_keys) == f.metadata.get("yaml", True), f.name
    cfg = load_config({"max_group_sparsity": 0.7, "tracer": "fx", "schedule": {"final": 0.3}})
    assert cfg.max_group_sparsity == 0.7 and cfg.tracer == "fx"
    assert load_config(config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="sparsity: unknown key"):
        load_config({"sparsity": 0.5})


def test_cli_flags_are_derived_from_the_fields():
    parser = argparse.ArgumentParser()
    names = [f.name for f in dataclasses.fields(PruneOptions)]
    flags = add_option_flags(parser, PruneOptions, names)
    assert flags == option_flags()
    assert "overrides" not in flags and flags["round_to"] == "--round-to"
    args = parser.parse_args(["--round-to", "8", "--scope", "global", "--exact-only", "--ignore", "a", "b"])
    assert given_options(args, names) == {"round_to": 8, "scope": "global", "exact_only": True, "ignore": ["a", "b"]}
    with pytest.raises(ConfigError) as info, flag_errors(flags):
        PruneOptions(round_to=0)
    assert (
        str(info.value) == "--round-to: must be an int >= 1, but got 0 (or 'auto')"
        and info.value.module == "--round-to"
    )


def test_a_registered_schedule_is_usable_from_yaml():
    def step_sparsity(step: int, *, final: float, at: int, every: int) -> float:
        return final if step >= at and step % every == 0 else 0.0

    SCHEDULES.add("every_nth", step_sparsity, description="test: final on every n-th step after at")
    try:
        cfg = load_config({"schedule": {"kind": "every_nth", "final": 0.4, "start": 2, "every": 3}})
        assert cfg.schedule.params == {"every": 3}
        assert cfg.schedule.options() == {"final": 0.4, "at": 2, "every": 3}
        assert cfg.schedule.sparsity(3) == 0.4 and cfg.schedule.sparsity(4) == 0.0
        assert load_config(config_to_dict(cfg)) == cfg
        with pytest.raises(ConfigError, match="schedule.end: not used by schedule kind 'every_nth'"):
            load_config({"schedule": {"kind": "every_nth", "final": 0.4, "every": 3, "end": 9}})
        with pytest.raises(ConfigError, match="every"):
            ScheduleConfig(kind="every_nth", final=0.4)
    finally:
        SCHEDULES.remove("every_nth")


def test_a_failing_criterion_is_a_prunekit_error_naming_it_and_the_model_is_unchanged():
    from prunekit.criteria import Criterion
    from prunekit.errors import CriterionError

    class Broken(Criterion):
        name = "broken"

        def scores(self, model, group):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("bug in a user's criterion")

    model, x = _net(), torch.randn(1, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        CriterionError, match=r"criterion 'broken' on group \d+ \(.*\) failed: ZeroDivisionError"
    ) as info:
        prunekit.prune_(model, x, sparsity=0.5, criterion=Broken())
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
