"""Schedules: exact values against the formulas, properties, and the scheduler on a tiny CNN."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.errors import ConfigError, UnknownNameError
from prunekit.schedules import (
    SCHEDULES,
    PruningScheduler,
    agp_sparsity,
    iterative_sparsity,
    one_shot_sparsity,
)


def _agp_reference(t: int, s_i: float, s_f: float, t0: int, n: int, dt: int) -> float:
    """Zhu & Gupta 2017, eq. (1), evaluated only at t0 + k*dt and held in between."""
    if t < t0:
        return s_i
    k = min((t - t0) // dt, n)
    return s_f + (s_i - s_f) * (1 - (k * dt) / (n * dt)) ** 3


@pytest.mark.parametrize("s_i,s_f,t0,n,dt", [(0.0, 0.5, 0, 10, 100), (0.1, 0.9, 37, 7, 13), (0.0, 0.8, 5, 1, 3)])
def test_agp_matches_formula(s_i, s_f, t0, n, dt):
    for t in range(0, t0 + n * dt + 3 * dt):
        got = agp_sparsity(t, initial=s_i, final=s_f, start=t0, end=t0 + n * dt, frequency=dt)
        assert math.isclose(got, _agp_reference(t, s_i, s_f, t0, n, dt), abs_tol=1e-12), t


def test_agp_changes_only_at_multiples_of_frequency():
    kw = dict(initial=0.0, final=0.6, start=10, end=110, frequency=20)
    values = [agp_sparsity(t, **kw) for t in range(200)]
    changes = [t for t in range(1, 200) if values[t] != values[t - 1]]
    assert changes == [30, 50, 70, 90, 110]
    assert values[9] == 0.0 and values[10] == 0.0 and values[150] == 0.6


@settings(max_examples=60, deadline=None)
@given(
    s_i=st.floats(0, 0.5),
    extra=st.floats(0, 0.49),
    t0=st.integers(0, 50),
    span=st.integers(1, 300),
    dt=st.integers(1, 40),
)
def test_agp_monotone_and_bounded(s_i, extra, t0, span, dt):
    s_f = s_i + extra
    kw = dict(initial=s_i, final=s_f, start=t0, end=t0 + span, frequency=dt)
    values = [agp_sparsity(t, **kw) for t in range(0, t0 + span + 5)]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    assert all(s_i - 1e-12 <= v <= s_f + 1e-12 for v in values)
    assert values[-1] == s_f


def test_iterative_equal_steps():
    kw = dict(final=0.6, start=100, end=400, steps=3)
    assert iterative_sparsity(100, **kw) == 0.0
    assert iterative_sparsity(199, **kw) == 0.0
    assert math.isclose(iterative_sparsity(200, **kw), 0.2)
    assert math.isclose(iterative_sparsity(300, **kw), 0.4)
    assert math.isclose(iterative_sparsity(399, **kw), 0.4)
    assert iterative_sparsity(400, **kw) == 0.6 and iterative_sparsity(10_000, **kw) == 0.6
    levels = {iterative_sparsity(t, final=0.5, start=0, end=10, steps=10) for t in range(20)}
    assert len(levels) == 11


def test_one_shot():
    assert one_shot_sparsity(9, final=0.5, at=10) == 0.0
    assert one_shot_sparsity(10, final=0.5, at=10) == 0.5
    assert one_shot_sparsity(0, final=0.5, at=0) == 0.5


@pytest.mark.parametrize(
    "fn,kw,needle",
    [
        (
            agp_sparsity,
            dict(initial=0.0, final=1.2, start=0, end=10, frequency=1),
            "final must be in [0, 1), but got 1.2",
        ),
        (agp_sparsity, dict(initial=0.5, final=0.2, start=0, end=10, frequency=1), "final must be >= initial"),
        (agp_sparsity, dict(initial=0.0, final=0.5, start=10, end=10, frequency=1), "end must be greater than start"),
        (agp_sparsity, dict(initial=0.0, final=0.5, start=0, end=10, frequency=0), "frequency must be an int >= 1"),
        (agp_sparsity, dict(initial=-0.1, final=0.5, start=0, end=10, frequency=1), "initial must be in [0, 1)"),
        (iterative_sparsity, dict(final=0.5, start=0, end=10, steps=0), "steps must be an int >= 1"),
        (iterative_sparsity, dict(final=0.5, start=1.5, end=10, steps=2), "start must be an int"),
        (one_shot_sparsity, dict(final=True, at=0), "final must be in [0, 1)"),
        (one_shot_sparsity, dict(final=0.5, at=-1), "at must be an int >= 0"),
    ],
)
def test_bad_arguments(fn, kw, needle):
    with pytest.raises(ConfigError) as info:
        fn(3, **kw)
    assert needle in str(info.value)


def test_negative_step_rejected():
    with pytest.raises(ConfigError, match="step must be an int >= 0"):
        one_shot_sparsity(-1, final=0.5, at=0)


def test_registry():
    assert SCHEDULES.names() == ["agp", "iterative", "one_shot"]
    assert all(SCHEDULES.describe(n) for n in SCHEDULES)
    with pytest.raises(UnknownNameError, match="did you mean 'agp'"):
        PruningScheduler("apg", options={})


# ----------------------------------------------------------------------------- the scheduler


class TinyCNN(nn.Module):
    """Conv-BN-ReLU-Conv-BN-ReLU-pool-Linear (a flatten into Linear after global pooling)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


AGP = dict(initial=0.0, final=0.5, start=0, end=4, frequency=1)


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    opt.zero_grad()
    model(x).square().mean().backward()
    opt.step()


def test_physical_mode_reaches_final_channel_count():
    torch.manual_seed(0)
    model, x = TinyCNN(), torch.randn(2, 3, 8, 8)
    sched = PruningScheduler("agp", options=AGP, mode="physical")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cuts = 0
    for step in range(7):
        result = sched.step(model, x, step)
        if result.pruned:
            cuts += 1
            assert result.rebuild_optimizer and result.report is not None
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
        _train_step(model, opt, x)
    assert cuts == 4  # targets rise at steps 1..4
    assert model.conv1.out_channels == 8 and model.conv2.out_channels == 8 and model.fc.in_features == 8
    assert sched.applied == 0.5
    assert model(x).shape == (2, 4)


def test_masked_mode_keeps_zeros_and_thins_at_the_end():
    torch.manual_seed(0)
    model, x = TinyCNN(), torch.randn(2, 3, 8, 8)
    sched = PruningScheduler("agp", options=AGP)  # masked is the default
    assert sched.mode == "masked"
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(7):
        result = sched.step(model, x, step)
        assert not result.rebuild_optimizer
        _train_step(model, opt, x)
        sched.after_optimizer_step(model)
        zeroed = (sched.masks.masks["conv1.weight"] == 0) if sched.masks is not None else None
        if zeroed is not None:
            assert (model.conv1.weight[zeroed] == 0).all()
    assert model.conv1.out_channels == 16  # still masked, not cut
    removed = int((sched.masks.masks["conv1.weight"].flatten(1).sum(1) == 0).sum())
    assert removed == 8
    # One more SGD step without re-applying would revive the weights; re-applying zeroes them.
    zeroed = sched.masks.masks["conv1.weight"] == 0
    _train_step(model, opt, x)
    assert (model.conv1.weight[zeroed] != 0).any()  # momentum revives the zeroed weights...
    sched.after_optimizer_step(model)
    assert (model.conv1.weight[zeroed] == 0).all()  # ...and re-applying the masks zeroes them again
    assert sched.finalize(model)
    assert model.conv1.out_channels == 8 and model.conv2.out_channels == 8 and model.fc.in_features == 8
    assert not sched.finalize(model)
    assert model(x).shape == (2, 4)


def test_masked_thin_is_equivalent_to_masked_model():
    torch.manual_seed(0)
    model, x = TinyCNN().eval(), torch.randn(2, 3, 8, 8)
    sched = PruningScheduler("one_shot", options=dict(final=0.5, at=0))
    sched.step(model, x, 0)
    before = model(x)
    sched.finalize(model)
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)


def test_target_is_pure_and_state_dict_round_trip():
    sched = PruningScheduler("iterative", options=dict(final=0.5, start=0, end=4, steps=2), mode="physical")
    assert [sched.target(t) for t in (0, 2, 4, 2)] == [0.0, 0.25, 0.5, 0.25]
    assert sched.applied == 0.0
    torch.manual_seed(0)
    model, x = TinyCNN(), torch.randn(2, 3, 8, 8)
    sched.step(model, x, 2)
    state = sched.state_dict()
    sizes = state.pop("sizes")  # each group's original size: exact counts after a resume
    assert state == {"applied": 0.25, "achieved": 0.25, "mode": "physical"}
    assert sorted(sizes.values()) == [16, 16] and "conv1:out" in ",".join(sizes)
    state["sizes"] = sizes
    resumed = PruningScheduler("iterative", options=dict(final=0.5, start=0, end=4, steps=2), mode="physical")
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state
    assert not resumed.step(model, x, 3).pruned
    result = resumed.step(model, x, 4)
    assert result.pruned and math.isclose(result.fraction, 1 / 3)
    assert model.conv1.out_channels == 8


def test_masked_resume_rebuilds_masks():
    torch.manual_seed(0)
    model, x = TinyCNN(), torch.randn(2, 3, 8, 8)
    sched = PruningScheduler("one_shot", options=dict(final=0.5, at=0))
    sched.step(model, x, 0)
    resumed = PruningScheduler("one_shot", options=dict(final=0.5, at=0))
    resumed.load_state_dict(sched.state_dict())
    result = resumed.step(model, x, 1)
    assert not result.pruned and resumed.masks is not None
    assert torch.equal(resumed.masks.masks["conv1.weight"], sched.masks.masks["conv1.weight"])


def test_scheduler_bad_arguments():
    with pytest.raises(ConfigError, match="mode must be one of"):
        PruningScheduler("agp", options=AGP, mode="soft")
    with pytest.raises(ConfigError, match="final must be in"):
        PruningScheduler("agp", options={**AGP, "final": 1.2})
    with pytest.raises(ConfigError, match="unknown keys"):
        PruningScheduler("agp", options=AGP).load_state_dict({"applied": 0.1, "step": 3})
    sched = PruningScheduler(lambda t: 0.1 * t)
    assert sched.target(3) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="schedule value must be in"):
        sched.target(20)


def test_from_config_scales_overrides_along_the_schedule():
    from prunekit.config import Override, PruneConfig, ScheduleConfig

    cfg = PruneConfig(
        schedule=ScheduleConfig(kind="agp", final=0.5, start=0, end=4), overrides=(Override("conv2", None),)
    )
    torch.manual_seed(0)
    model, x = TinyCNN(), torch.randn(2, 3, 8, 8)
    sched = PruningScheduler.from_config(cfg, mode="physical")
    for step in range(5):
        sched.step(model, x, step)
    assert model.conv1.out_channels == 8 and model.conv2.out_channels == 16
    with pytest.raises(ConfigError, match="overrides need a named schedule"):
        PruningScheduler(lambda t: 0.1, overrides={"conv1": 0.2})
