"""Per-layer latency tables: measured once, cached on disk, invalidated when the key changes."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn as nn

import prunekit.latency.table as table_module
from prunekit.latency import LatencyTable, LayerSpec, Meter, layer_specs
from prunekit.latency.table import grid_widths
from tests.latency import fakes

SPEC = LayerSpec("conv2d", 32, 64, (3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8), False)


def test_an_entry_is_measured_once(fake_backend):
    table = LatencyTable(Meter(fake_backend))
    before = fakes.CALLS["prepare"]
    a = table.latency(SPEC, 32, 64)
    assert table.latency(SPEC, 32, 64) == a
    assert table.measured == 1 and fakes.CALLS["prepare"] == before + 1


def test_the_table_is_cached_on_disk(fake_backend, tmp_path):
    table = LatencyTable(Meter(fake_backend), cache_dir=tmp_path)
    value = table.latency(SPEC, 16, 64)
    path = table.save()
    assert path is not None and path.parent == tmp_path and table.save() is None  # nothing new to write
    data = json.loads(path.read_text())
    assert data["key"] == table.key and len(data["entries"]) == 1
    again = LatencyTable(Meter(fake_backend), cache_dir=tmp_path)
    assert again.latency(SPEC, 16, 64) == value and again.measured == 0


@pytest.mark.parametrize(
    "change",
    ["torch", "machine", "batch", "threads"],
)
def test_a_changed_key_measures_again(fake_backend, tmp_path, monkeypatch, change):
    table = LatencyTable(Meter(fake_backend), cache_dir=tmp_path)
    table.latency(SPEC, 16, 64)
    table.save()
    meter = Meter(fake_backend, batch=2 if change == "batch" else 1, threads=2 if change == "threads" else 1)
    if change in ("torch", "machine"):
        real = table_module.machine_key

        def other(backend):
            key = dict(real(backend))
            key["torch" if change == "torch" else "cpu"] = "something else"
            return key

        monkeypatch.setattr(table_module, "machine_key", other)
    fresh = LatencyTable(meter, cache_dir=tmp_path)
    assert fresh.entries == {}
    fresh.latency(SPEC, 16, 64)
    assert fresh.measured == 1


def test_a_stale_file_under_the_same_name_is_ignored(fake_backend, tmp_path):
    table = LatencyTable(Meter(fake_backend), cache_dir=tmp_path)
    table.path.parent.mkdir(parents=True, exist_ok=True)
    table.path.write_text(json.dumps({"key": {"cpu": "old"}, "entries": {"x|1|1": 1.0}}))
    assert LatencyTable(Meter(fake_backend), cache_dir=tmp_path).entries == {}
    table.path.write_text("not json")
    assert LatencyTable(Meter(fake_backend), cache_dir=tmp_path).entries == {}


def test_grid_widths():
    assert grid_widths(64) == [8, 16, 24, 32, 40, 48, 56, 64]
    assert grid_widths(64, 16) == [16, 32, 48, 64]
    assert grid_widths(3) == [1, 2, 3]


def test_estimate_is_exact_on_the_grid(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    for cin, cout in ((32, 64), (32, 32), (16, 24), (4, 8)):  # grid widths are k/8 of 32 and 64
        assert table.estimate(SPEC, cin, cout) == table.latency(SPEC, cin, cout)


def test_estimate_is_bilinear_between_grid_points(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    got = table.estimate(SPEC, 18, 44)  # between 16/20 and 40/48: u = 1/2, v = 1/2
    t = table.latency
    expected = (t(SPEC, 16, 40) + t(SPEC, 20, 40) + t(SPEC, 16, 48) + t(SPEC, 20, 48)) / 4
    assert got == pytest.approx(expected)
    assert table.estimate(SPEC, 16, 32) < table.estimate(SPEC, 32, 32) < table.estimate(SPEC, 32, 64)


def test_estimate_times_only_the_grid_points_around_a_pair(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    table.estimate(SPEC, 18, 44)
    assert table.measured == 4  # not the whole 8 x 8 grid
    table.estimate(SPEC, 19, 46)  # the same cell
    assert table.measured == 4


def test_a_width_under_the_grid_is_timed_itself(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    assert table.estimate(SPEC, 2, 64) == table.latency(SPEC, 2, 64)  # 32 / 8 = 4 is the narrowest
    assert table.estimate(SPEC, 0, 64) == table.latency(SPEC, 1, 64)


def test_estimate_follows_kernels_that_are_not_separable():
    table = LatencyTable(Meter(fakes.register_not_separable()), persist=False)
    # 20 and 40 are grid widths; a row-and-column product, T(20, 64) T(32, 40) / T(32, 64), would
    # count the slow kernel twice and predict 4 ns per pair
    assert table.estimate(SPEC, 20, 40) == pytest.approx(20 * 40 * 2e-9, rel=1e-6)
    assert table.estimate(SPEC, 16, 32) == pytest.approx(16 * 32 * 1e-9, rel=1e-6)


def test_depthwise_and_grouped_widths(fake_backend):
    table = LatencyTable(Meter(fake_backend), persist=False)
    dw = LayerSpec("conv2d", 32, 32, (3, 3), (1, 1), (1, 1), (1, 1), 32, (8, 8), False)
    assert dw.depthwise and table.latency(dw, 16, 32) == table.latency(dw, 16, 16)
    grouped = LayerSpec("conv2d", 32, 32, (3, 3), (1, 1), (1, 1), (1, 1), 4, (8, 8), False)
    assert table.latency(grouped, 30, 31) == table.latency(grouped, 28, 28)  # whole groups


def test_layer_specs_record_input_sizes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    specs = layer_specs(model, (torch.randn(2, 3, 16, 16),))
    assert set(specs) == {"0", "3"}
    assert specs["0"].input_shape == (16, 16) and specs["0"].stride == (2, 2)
    assert specs["3"].kind == "linear" and specs["3"].in_channels == 512 and specs["3"].input_shape == ()
    layer, x = specs["0"].build(4, 6)
    assert layer(x).shape == (1, 6, 8, 8)


class _Units(nn.Module):
    """A conv -> BN -> ReLU unit, a conv whose norm comes after an add (not its unit's), an
    activation after an in-place add (the same tensor: its unit's), and a norm called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.bn_a, self.act_a = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.b, self.bn_b = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
        self.c, self.bn_c, self.act_c = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.SiLU()

    def forward(self, x):
        y = self.act_a(self.bn_a(self.a(x)))
        z = self.bn_b(self.b(y) + y)
        w = self.bn_c(self.c(z))
        w += z
        return self.act_c(w)


def test_layer_specs_time_a_conv_with_its_norm_and_activation():
    specs = layer_specs(_Units(), (torch.randn(2, 3, 8, 8),))
    assert specs["a"].post == ("BatchNorm2d", "ReLU")
    assert specs["b"].post == ()
    assert specs["c"].post == ("BatchNorm2d", "SiLU")
    assert "+BatchNorm2d+ReLU" in specs["a"].name() and specs["a"].name() != SPEC.name()
    unit, x = specs["a"].build(3, 5)
    assert [type(m) for m in unit] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] and unit(x).shape == (1, 5, 8, 8)
    assert unit[1].num_features == 5
    alone = layer_specs(_Units(), (torch.randn(2, 3, 8, 8),), post=False)
    assert all(s.post == () for s in alone.values()) and alone["a"] == dataclasses.replace(specs["a"], post=())
