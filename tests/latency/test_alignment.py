"""round_to="auto": the multiple chosen from measured widths (synthetic times, fake backend)."""

from __future__ import annotations

import math

import pytest
import torch

from prunekit.latency import LatencyTable, Meter, best_multiple, layer_specs
from prunekit.latency.alignment import choose_multiple, probe_layer, probe_widths
from prunekit.metrics import macs_per_module
from tests import zoo


@pytest.mark.parametrize("block", [8, 16])
def test_a_staircase_gives_its_block(block):
    times = {w: 1e-3 + math.ceil(w / block) * block * 1e-5 for w in range(33, 65)}
    assert choose_multiple(times)[0] == block


def test_linear_times_give_one():
    times = {w: 1e-3 + w * 1e-5 for w in range(33, 65)}
    multiple, scores = choose_multiple(times)
    assert multiple == 1 and set(scores) == {1, 2, 4, 8, 16}


def test_probe_widths():
    assert probe_widths(64) == list(range(1, 33))
    assert probe_widths(2048) == list(range(993, 1025))
    assert probe_widths(10) == list(range(1, 9))


def test_best_multiple_on_the_fake_backend(fake_backend):
    model = zoo.build(zoo.ResidualNet)
    x = model.example_inputs()
    specs = layer_specs(model, x)
    macs = macs_per_module(model, x)[1]
    assert probe_layer(specs, macs) in specs
    table = LatencyTable(Meter(fake_backend), persist=False)
    alignment = best_multiple(table, specs, macs)
    assert alignment.multiple == 8  # the fake kernels pad widths to multiples of 8
    assert alignment.to_dict()["multiple"] == 8


def test_no_dense_layer_gives_one(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    assert best_multiple(table, {}).multiple == 1
    assert torch.is_tensor(torch.zeros(1))
