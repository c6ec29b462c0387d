"""ScheduleRecipe: the epoch hooks on a CIFAR ResNet-20, replay, resume, targets and data."""

from __future__ import annotations

import copy

import pytest
import torch

import prunekit
from prunekit.config import PruneConfig, ScheduleConfig
from prunekit.errors import ConfigError
from prunekit.models import get_model
from prunekit.recipes import ScheduleRecipe, load_recipe, recipe_from_options
from prunekit.recipes.schedule import decisions_from_state
from prunekit.schedules import agp_sparsity
from prunekit.schedules.decisions import kept_report
from prunekit.surgery.selection import removal_count

AGP4 = dict(schedule="agp", start=0, end=3, frequency=1)  # 4 epochs: targets at 0, 1, 2, 3


def _resnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model("resnet20", num_classes=10, in_channels=1)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _expected(size: int, epoch: int) -> int:
    s = agp_sparsity(epoch, initial=0.0, final=0.5, start=0, end=3, frequency=1)
    return size - removal_count(size, s)


def _widths(model) -> tuple[int, int, int, int]:
    return (
        model.conv1.out_channels,
        model.layer1[0].conv1.out_channels,
        model.layer2[1].conv2.out_channels,
        model.layer3[2].conv1.out_channels,
    )


def _run(recipe, model, x, epochs):
    events = []
    for epoch in epochs:
        events.append(recipe.on_epoch_begin(model, x, epoch))
        recipe.after_optimizer_step(model)
        events.append(recipe.on_epoch_end(model, x, epoch))
    return events


def test_physical_agp_reaches_exact_channel_counts_each_epoch(x):
    model = _resnet()
    recipe = recipe_from_options(sparsity=0.5, mode="physical", **AGP4)
    assert recipe.num_epochs == 4
    for epoch in range(4):
        event = recipe.on_epoch_begin(model, x, epoch)
        assert event.changed == (epoch > 0) and event.rebuild_optimizer == (epoch > 0)
        assert _widths(model) == tuple(_expected(n, epoch) for n in (16, 16, 32, 64))
    assert _widths(model) == (8, 8, 16, 32)
    assert not recipe.finalize(model, x).changed  # nothing left masked
    assert [d.kind for d in recipe.decisions] == ["physical"] * 3


def test_physical_cut_is_equivalent_to_the_zeroed_original(x):
    model = _resnet().eval()
    original = copy.deepcopy(model)
    recipe = recipe_from_options(sparsity=0.4, mode="physical")
    event = recipe.on_epoch_begin(model, x, 0)
    prunekit.assert_equivalent(original, model, x, event.reports[0])
    prunekit.assert_equivalent(original, model, x, kept_report(event.decisions[0]))


def test_masked_agp_then_finalize_matches_the_masked_model(x):
    model = _resnet()
    recipe = recipe_from_options(sparsity=0.5, mode="masked", **AGP4)
    for epoch in range(4):
        event = recipe.on_epoch_begin(model, x, epoch)
        assert not event.rebuild_optimizer
    assert _widths(model) == (16, 16, 32, 64)
    zero_rows = (model.layer3[2].conv1.weight.flatten(1).abs().sum(1) == 0).sum()
    assert int(zero_rows) == 32
    model.eval()
    with torch.no_grad():
        before = model(x)
    event = recipe.finalize(model, x)
    assert event.rebuild_optimizer and event.decisions[0].kind == "physical"
    assert _widths(model) == (8, 8, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["physical", "masked"])
def test_replay_on_a_fresh_copy_gives_the_same_model(x, mode):
    model = _resnet()
    recipe = recipe_from_options(sparsity=0.5, mode=mode, **AGP4)
    events = _run(recipe, model, x, range(4))
    events.append(recipe.finalize(model, x))
    decisions = [d for e in events for d in e.decisions]
    fresh, other = _resnet(seed=5), recipe_from_options(sparsity=0.5, mode=mode, **AGP4)
    for d in decisions:
        other.replay(fresh, d)
    shapes = {n: p.shape for n, p in model.state_dict().items()}
    assert {n: p.shape for n, p in fresh.state_dict().items()} == shapes
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    assert other.scheduler.state_dict() == recipe.scheduler.state_dict()


@pytest.mark.parametrize("mode", ["physical", "masked"])
def test_resume_from_state_dict_continues_like_an_uninterrupted_run(x, mode):
    full = _resnet()
    whole = recipe_from_options(sparsity=0.5, mode=mode, **AGP4)
    _run(whole, full, x, range(4))
    whole.finalize(full, x)

    first = _resnet()
    recipe = recipe_from_options(sparsity=0.5, mode=mode, **AGP4)
    _run(recipe, first, x, range(2))
    checkpoint = {"model": copy.deepcopy(first.state_dict()), "recipe": recipe.state_dict()}

    resumed, again = _resnet(seed=9), recipe_from_options(sparsity=0.5, mode=mode, **AGP4)
    for d in decisions_from_state(checkpoint["recipe"]):
        again.replay(resumed, d)
    resumed.load_state_dict(checkpoint["model"])
    again.load_state_dict(checkpoint["recipe"])
    _run(again, resumed, x, range(2, 4))
    again.finalize(resumed, x)
    assert _widths(resumed) == _widths(full) == (8, 8, 16, 32)
    assert len(again.state_dict()["decisions"]) == len(whole.state_dict()["decisions"])


def test_load_state_dict_rejects_a_partial_replay(x):
    model, recipe = _resnet(), recipe_from_options(sparsity=0.5, mode="physical", **AGP4)
    _run(recipe, model, x, range(3))
    state = recipe.state_dict()
    other = recipe_from_options(sparsity=0.5, mode="physical", **AGP4)
    other.replay(_resnet(), decisions_from_state(state)[0])
    with pytest.raises(ConfigError, match="2 decisions stored but 1 replayed"):
        other.load_state_dict(state)
    with pytest.raises(ConfigError, match="not a prunekit.recipe/1"):
        other.load_state_dict({"applied": 0.1})


def test_overrides_follow_the_schedule(x):
    model = _resnet()
    recipe = recipe_from_options(
        sparsity=0.5, mode="physical", overrides={"re:layer3\\..*": None, "layer1.0.conv1": 0.25}, **AGP4
    )
    _run(recipe, model, x, range(4))
    assert model.layer3[2].conv1.out_channels == 64  # kept
    assert model.layer1[0].conv1.out_channels == 12  # 0.25 of 16
    assert model.layer1[1].conv1.out_channels == 8


@pytest.mark.parametrize("mode", ["physical", "masked"])
def test_target_macs_is_one_shot_and_reported(x, mode):
    model = _resnet()
    macs = prunekit.count_macs(model, (x,))
    recipe = recipe_from_options(target_macs=0.5, mode=mode)
    event = recipe.on_epoch_begin(model, x, 0)
    assert event.changed and "target_macs=0.5 requested" in event.messages[0]
    recipe.finalize(model, x)
    assert prunekit.count_macs(model, (x,)) <= 0.5 * macs
    assert not recipe.on_epoch_begin(model, x, 1).changed


def test_data_driven_criterion_uses_the_calibration_batches(x):
    model = _resnet()
    recipe = recipe_from_options(sparsity=0.25, criterion="apoz", criterion_options={"num_batches": 2})
    assert recipe.needs_data
    with pytest.raises(ConfigError, match="criterion 'apoz' scores channels from calibration data"):
        recipe.on_epoch_begin(model, x, 0)
    batches = [(torch.randn(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    event = recipe.on_epoch_begin(model, x, 0, calibration=batches)
    assert event.changed and model.layer3[0].conv1.out_channels == 48
    with pytest.raises(ConfigError, match="criterion_options"):
        recipe_from_options(sparsity=0.25, criterion="l1", criterion_options={"bins": 3})


def test_load_recipe_reads_text_paths_mappings_and_configs(tmp_path):
    text = "criterion: l2\nmode: physical\nschedule: {kind: iterative, final: 0.5, start: 0, end: 4, steps: 2}\n"
    path = tmp_path / "prune.yaml"
    path.write_text(text)
    for source in (text, path, str(path), {"criterion": "l2", "mode": "physical"}):
        recipe = load_recipe(source)
        assert isinstance(recipe, ScheduleRecipe) and recipe.mode == "physical"
    assert load_recipe(PruneConfig(schedule=ScheduleConfig(kind="agp", end=10))).num_epochs == 11
    assert load_recipe(path, mode="masked").mode == "masked"
    with pytest.raises(ConfigError, match="schedule.fnal: unknown key; did you mean 'final'"):
        load_recipe("schedule: {fnal: 0.5}\n")


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({}, "give exactly one of sparsity, target_macs or target_params"),
        ({"sparsity": 0.5, "target_macs": 0.5}, "give exactly one"),
        ({"target_macs": 0.5, "schedule": "agp", "end": 3}, "target_macs: needs a one_shot schedule"),
        ({"target_params": 1.5}, "target_params: must be a fraction in (0, 1]"),
        ({"sparsity": 0.5, "mode": "soft"}, "mode: must be 'masked' or 'physical'"),
        ({"sparsity": 1.2}, "schedule.final: must be in [0, 1), but got 1.2"),
    ],
)
def test_bad_options(kwargs, needle):
    with pytest.raises(ConfigError) as info:
        recipe_from_options(**kwargs)
    assert needle in str(info.value)


def test_yaml_with_both_final_and_target_is_rejected():
    with pytest.raises(ConfigError, match="schedule.final: give exactly one of schedule.final and target_macs"):
        load_recipe({"target_macs": 0.5, "schedule": {"kind": "one_shot", "final": 0.3}})
