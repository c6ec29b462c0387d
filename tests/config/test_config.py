"""The config schema and its YAML loader: round trips, every bad case with its dotted path."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from prunekit.config import (
    Override,
    PruneConfig,
    ScheduleConfig,
    config_to_dict,
    dump_config,
    load_config,
)
from prunekit.errors import ConfigError
from prunekit.schedules import agp_sparsity

VALID = textwrap.dedent(
    """\
    version: 1
    criterion: l2
    criterion_options: {}
    scope: global
    round_to: 8
    ignore: [fc]
    exact_only: true
    schedule:
      kind: agp
      initial: 0.0
      final: 0.5
      start: 10
      end: 110
      frequency: 20
    overrides:
      - {pattern: conv1, sparsity: null}
      - {pattern: "re:layer4\\\\..*", sparsity: 0.7}
      - {pattern: "re:layer.*", sparsity: 0.3}
    """
)


def _write(tmp_path, text: str):
    path = tmp_path / "prune.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_file_loads_and_round_trips(tmp_path):
    cfg = load_config(_write(tmp_path, VALID))
    assert cfg.criterion == "l2" and cfg.scope == "global" and cfg.round_to == 8
    assert cfg.ignore == ("fc",) and cfg.exact_only is True
    assert cfg.schedule == ScheduleConfig(kind="agp", initial=0.0, final=0.5, start=10, end=110, frequency=20)
    assert cfg.overrides[1] == Override(r"re:layer4\..*", 0.7)
    assert load_config(config_to_dict(cfg)) == cfg
    out = dump_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(out) == cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prune.yaml", "resolved.yaml"]  # no temp file left
    for t in (0, 30, 55, 200):
        assert cfg.schedule.sparsity(t) == agp_sparsity(t, initial=0.0, final=0.5, start=10, end=110, frequency=20)


def test_defaults_and_empty_file(tmp_path):
    assert load_config(_write(tmp_path, "")) == PruneConfig()
    assert load_config({}) == PruneConfig()
    cfg = PruneConfig()
    assert cfg.version == 1 and cfg.criterion == "l1" and cfg.scope == "local"
    assert load_config(config_to_dict(cfg)) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.scope = "global"  # type: ignore[misc]


def test_override_precedence():
    cfg = load_config(
        {
            "schedule": {"kind": "one_shot", "final": 0.4},
            "overrides": [
                {"pattern": "re:layer.*", "sparsity": 0.3},
                {"pattern": "re:layer4.*", "sparsity": 0.7},  # shadowed by the first regex
                {"pattern": "layer4.conv", "sparsity": 0.1},  # exact name wins over any regex
                {"pattern": "stem"},  # sparsity omitted -> None: do not prune
            ],
        }
    )
    assert cfg.resolve_override("layer4.conv") == 0.1
    assert cfg.resolve_override("layer4.bn") == 0.3
    assert cfg.resolve_override("stem") is None
    assert cfg.resolve_override("head") == 0.4
    assert cfg.resolve_override("xlayer1") == 0.4  # full match, not search


@pytest.mark.parametrize(
    "text,path,needle",
    [
        ("schedule:\n  kind: agp\n  frequncy: 3\n", "schedule.frequncy", "unknown key; did you mean 'frequency'?"),
        ("critrion: l1\n", "critrion", "did you mean 'criterion'?"),
        ("schedule:\n  final: 0.3\n  final: 0.4\n", "schedule.final", "duplicate key"),
        ("scope: local\nscope: global\n", "scope", "duplicate key"),
        ("overrides:\n  - {pattern: a, pattern: b}\n", "overrides[0].pattern", "duplicate key"),
        ("schedule:\n  final: 1.2\n", "schedule.final", "must be in [0, 1), but got 1.2"),
        ("schedule:\n  final: high\n", "schedule.final", "must be a number"),
        ("schedule:\n  kind: agp\n  start: '10'\n  end: 20\n", "schedule.start", "must be an int"),
        ("round_to: 0\n", "round_to", "must be an int >= 1"),
        ("exact_only: 1\n", "exact_only", "must be true or false"),
        ("scope: globl\n", "scope", "must be 'local' or 'global'"),
        ("ignore: fc\n", "ignore", "must be a list"),
        ("version: 2\n", "version", "unsupported config version 2"),
        ("criterion: l3\n", "criterion", "unknown criterion 'l3'"),
        ("schedule:\n  kind: apg\n", "schedule.kind", "unknown schedule kind 'apg'; did you mean 'agp'?"),
        ("schedule:\n  kind: one_shot\n  frequency: 3\n", "schedule.frequency", "not used by schedule kind"),
        ("schedule:\n  kind: agp\n  start: 50\n  end: 50\n", "schedule.end", "must be greater than start"),
        ("schedule:\n  kind: agp\n  initial: 0.5\n  final: 0.2\n  end: 9\n", "schedule.final", "must be >= initial"),
        ("overrides:\n  - {pattern: 're:conv[', sparsity: 0.2}\n", "overrides[0].pattern", "invalid regex"),
        ("overrides:\n  - {pattern: conv, sparsity: 1.5}\n", "overrides[0].sparsity", "must be in [0, 1)"),
        ("overrides:\n  - {pattern: conv, sparsty: 0.5}\n", "overrides[0].sparsty", "did you mean 'sparsity'?"),
        ("overrides:\n  - {pattern: a}\n  - {pattern: a}\n", "overrides[1].pattern", "duplicate pattern"),
        ("schedule: 0.5\n", "schedule", "must be a mapping"),
        ("- 1\n- 2\n", "config", "must be a mapping"),
    ],
)
def test_bad_config_names_the_dotted_path(tmp_path, text, path, needle):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    assert needle in message, message
    assert info.value.module == path


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, "schedule: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="path or a mapping"):
        load_config(42)  # type: ignore[arg-type]


def test_dataclasses_validate_directly():
    with pytest.raises(ConfigError, match=r"^final: must be in \[0, 1\), but got 1.2"):
        ScheduleConfig(final=1.2)
    with pytest.raises(ConfigError, match="pattern"):
        Override("re:(")


def test_dump_is_atomic_on_failure(tmp_path, monkeypatch):
    import os

    target = tmp_path / "out.yaml"
    target.write_text("old: true\n")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        dump_config(PruneConfig(), target)
    assert target.read_text() == "old: true\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]
