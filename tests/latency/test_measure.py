"""Timing logic with a fake clock: median_time, Meter, the backend registry, compare_latency."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from prunekit.errors import ConfigError, UnknownNameError
from prunekit.latency import LATENCY_BACKENDS, LatencyBackend, Meter, compare_latency, machine_key, median_time
from tests.latency import fakes


class StepClock:
    """Each run() advances the clock by the next duration of a list."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def __call__(self):
        return self.now

    def run(self):
        self.now += self.durations[self.calls % len(self.durations)]
        self.calls += 1


def test_median_time_skips_warmup_and_takes_the_median():
    clock = StepClock([100.0, 100.0, 3.0, 1.0, 2.0, 5.0, 4.0])  # two slow warm-up runs
    t = median_time(clock.run, min_run_time=0.0, min_runs=5, warmup=2, clock=clock)
    assert t == 3.0 and clock.calls == 7


def test_median_time_runs_until_min_run_time():
    clock = StepClock([0.25])
    median_time(clock.run, min_run_time=1.0, min_runs=1, warmup=0, clock=clock)
    assert clock.calls == 4  # 4 x 0.25 s reach 1 s


def test_median_time_syncs_after_each_run():
    clock, synced = StepClock([1.0]), []
    median_time(clock.run, min_run_time=0.0, min_runs=3, warmup=1, clock=clock, sync=lambda: synced.append(1))
    assert len(synced) == 1 + 3


def test_median_time_stops_on_a_frozen_clock():
    assert median_time(lambda: None, min_run_time=1.0, clock=lambda: 0.0) == 0.0


def test_meter_uses_the_backend_clock(fake_backend):
    model, x = nn.Conv2d(8, 16, 3), torch.randn(1, 8, 10, 10)
    meter = Meter(fake_backend, batch=2, threads=1)
    assert meter(model, x) == pytest.approx(fakes.fake_cost(model, (torch.cat([x, x]),)))


def test_unknown_and_unavailable_backends(fake_backend):
    with pytest.raises(UnknownNameError, match="did you mean 'onnxruntime'"):
        Meter("onnxruntim")
    if "nowhere" not in LATENCY_BACKENDS:
        LATENCY_BACKENDS.add(
            "nowhere", LatencyBackend("nowhere", "", fakes._prepare, lambda: "no such device", lambda: {})
        )
    with pytest.raises(ConfigError, match="cannot run here: no such device"):
        Meter("nowhere")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            Meter("cuda")


def test_compare_latency(fake_backend):
    big, small = nn.Conv2d(8, 32, 3), nn.Conv2d(8, 16, 3)
    out = compare_latency(big, small, torch.randn(1, 8, 10, 10), batch_sizes=(1, 4), backend=fake_backend)
    assert set(out["batches"]) == {"1", "4"} and out["backend"] == fake_backend
    b1 = out["batches"]["1"]
    assert b1["speedup"] == pytest.approx(b1["before_ms"] / b1["after_ms"]) and b1["speedup"] > 1.5


def test_machine_key_names_backend_versions(fake_backend):
    key = machine_key(fake_backend)
    assert key["backend"] == fake_backend and key["fake"] == "1" and key["cpu_count"]
    assert machine_key("torch")["torch"] == torch.__version__


class _RecordsMode(nn.Module):
    """Records whether each forward ran under ``torch.inference_mode``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(torch.is_inference_mode_enabled())
        return self.conv(x)


def test_torch_backend_runs_under_inference_mode():
    model = _RecordsMode()
    run = Meter("torch").prepare(model, torch.randn(1, 2, 4, 4))
    out = run()
    assert model.modes == [True] and out.is_inference() and not torch.is_inference_mode_enabled()
    assert model.conv.weight.requires_grad  # the model itself is untouched


def test_interleaved_times_every_run_once_per_round():
    """Rounds interleave the runs in the mapping's order; each run gets its own list."""
    clock, order = StepClock([1.0]), []

    def run_of(key, seconds):
        def run():
            order.append(key)
            clock.now += seconds

        return run

    meter = Meter("torch", clock=clock, min_run_time=0.0)
    times = meter.interleaved({"a": run_of("a", 1.0), "b": run_of("b", 2.0)}, rounds=3)
    assert times == {"a": [1.0] * 3, "b": [2.0] * 3}
    per_time = len(order) // 6  # median_time's warm-up and minimum runs, the same for every call
    assert order == [k for _ in range(3) for k in ("a", "b") for _ in range(per_time)]
