"""Checkpoints: plain data loadable with weights_only, RNG round trip, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import prunekit
from prunekit.errors import ConfigError
from prunekit.pipeline import load_checkpoint, save_checkpoint
from prunekit.pipeline.checkpoint import report_from_data, report_to_data, rng_state, set_rng_state


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):  # type: ignore[no-untyped-def]
    save_checkpoint({"rng": rng_state()}, tmp_path / "c.pt")
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws


def test_prune_report_round_trip(tmp_path):  # type: ignore[no-untyped-def]
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    report = prunekit.prune_(model, torch.randn(1, 1, 8, 8), sparsity=0.5)
    save_checkpoint({"r": report_to_data(report)}, tmp_path / "checkpoint.pt")
    back = report_from_data(load_checkpoint(tmp_path)["r"])  # a folder means its checkpoint.pt
    assert back.to_dict() == report.to_dict()


def test_bad_checkpoints_are_clear_errors(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a prunekit checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
