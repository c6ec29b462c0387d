"""The data-aware choice among allocations (EagleEye's adaptive batch-norm evaluation): the
candidate families, placement at a cost, the score, and ``allocation_candidates`` in a prune,
on simulated backends (no timing)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.config import load_config
from prunekit.engine import PruneOptions
from prunekit.engine import allocation_search as search
from prunekit.engine.allocation_search import (
    Allocator,
    Family,
    Score,
    adaptive_bn_score,
    best,
    place,
    random_weights,
    take_batches,
    uniform_family,
)
from prunekit.equivalence import check_equivalence
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.models import get_model
from tests.engine.test_latency_allocation import Chain
from tests.latency import fakes


@pytest.fixture(autouse=True)
def backends(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return fakes.register()


def chain_allocator(step=1):
    torch.manual_seed(0)
    model = Chain()
    graph = DependencyGraph(model, torch.randn(1, 3, 8, 8))
    groups = [g for g in graph.groups if g.prunable]
    layers = {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    scores = {g.id: np.arange(1.0, g.size + 1) for g in groups}
    allocator = Allocator(
        graph, groups, scores, layers, lambda n, ci, co: ci * co * 1e-6,
        step=step, max_group_sparsity=0.9, balance=1.0, cuts={},
    )  # fmt: skip
    return model, allocator


def batches(n=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 32, 32, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def resnet20():
    torch.manual_seed(0)
    return get_model("resnet20", num_classes=10, in_channels=3).eval(), torch.randn(2, 3, 32, 32)


# -- families and placement -------------------------------------------------------------------


def test_uniform_family_cuts_every_group_by_the_same_fraction_at_the_multiple():
    _, allocator = chain_allocator()
    family = uniform_family(allocator.groups, 8, 0.9)
    counts = family.counts(0.5)
    assert counts and all(n == 16 for n in counts.values())  # 32 channels each, half at a multiple of 8
    assert family.counts(0.0) == {}
    assert all(32 - n >= 8 for n in family.counts(0.99).values())  # max_group_sparsity, kept a multiple of 8
    assert all(n % 8 == 0 for n in family.counts(0.3).values())


def test_random_weights_are_reproducible_and_within_the_spread():
    _, allocator = chain_allocator()
    a, b = random_weights(allocator.groups, 3), random_weights(allocator.groups, 3)
    assert a == b and len(a) == 3
    values = [w for m in a for w in m.values()]
    assert all(1 / search.SPREAD <= w <= search.SPREAD for w in values) and len(set(values)) == len(values)
    assert random_weights(allocator.groups, 1, seed=1) != a[:1]


def test_place_finds_the_least_amount_that_fits():
    family = Family("linear", lambda a: {0: int(a * 100)}, 1.0)
    amount = place(family, lambda c: c.get(0, 0) >= 37)
    assert family.counts(amount) == {0: 37} and amount == pytest.approx(0.37, abs=1e-4)
    assert place(family, lambda c: True) == 0.0
    assert place(family, lambda c: False) == 1.0  # none fits: the most it has


def test_perturbed_families_differ_from_the_greedy_order_and_fit_the_same_prediction():
    _, allocator = chain_allocator()
    greedy, _ = allocator.family()
    chosen = greedy.counts(0.5)
    ceiling = allocator.predict(chosen)
    seen = {tuple(sorted(chosen.items()))}
    for w in random_weights(allocator.groups, 6):
        family, _ = allocator.family("p", w)
        counts = family.counts(place(family, lambda c: allocator.predict(c) <= ceiling))
        assert allocator.predict(counts) <= ceiling + 1e-12
        seen.add(tuple(sorted(counts.items())))
    assert len(seen) > 1
    assert allocator.predict({}) == pytest.approx(sum(ci * co for ci, co in allocator.layers.values()) * 1e-6)


def test_plan_of_removes_the_lowest_scoring_channels():
    _, allocator = chain_allocator()
    gid = allocator.groups[0].id
    plan = allocator.plan_of({gid: 5})
    assert list(plan.removed[gid]) == [0, 1, 2, 3, 4]  # scores 1..32: the first five are lowest


# -- the score --------------------------------------------------------------------------------


def test_the_score_does_not_depend_on_the_running_statistics_the_cut_left():
    model, _ = resnet20()
    data = batches()
    score = adaptive_bn_score(model, data)
    spoiled = copy.deepcopy(model)
    for m in spoiled.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.fill_(50.0)
            m.running_var.fill_(1e-4)
    before = {k: v.clone() for k, v in spoiled.state_dict().items()}
    again = adaptive_bn_score(spoiled, data)
    assert again == score and 0.0 <= score.top1 <= 1.0 and np.isfinite(score.loss)
    assert adaptive_bn_score(spoiled, data, steps=2) == adaptive_bn_score(model, data, steps=2)  # batch statistics
    assert all(torch.equal(v, spoiled.state_dict()[k]) for k, v in before.items())  # the model is not changed
    assert not spoiled.training


def test_the_score_is_the_loss_then_top1():
    assert best({"greedy": Score(0.5, 1.0), "a": Score(0.5, 1.0), "b": Score(0.9, 1.1)}, "greedy") == "greedy"
    assert best({"greedy": Score(0.5, 1.0), "a": Score(0.4, 0.9)}, "greedy") == "a"
    assert best({"greedy": Score(0.5, 1.0), "a": Score(0.6, 1.0)}, "greedy") == "a"


def test_a_short_finetune_trains_a_copy_before_the_statistics_are_estimated():
    model, _ = resnet20()
    data = batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained = adaptive_bn_score(model, data, steps=3, lr=0.05)
    assert trained != adaptive_bn_score(model, data)  # the steps changed the weights it scored
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    frozen = copy.deepcopy(model).requires_grad_(False)  # nothing to train: the statistics alone
    assert adaptive_bn_score(frozen, data, steps=3) == adaptive_bn_score(model, data)


def test_bad_allocation_data_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="allocation_data=") as e:
        take_batches(None, 4)
    assert e.value.module == "allocation_data"
    with pytest.raises(ConfigError, match="not an \\(inputs, targets\\) pair"):
        take_batches([torch.randn(2, 3)], 4)
    with pytest.raises(ConfigError, match="gave 1 batch"):
        take_batches(batches(1), 4)
    with pytest.raises(ConfigError, match="must be an iterable") as e:
        take_batches(3, 4)
    assert isinstance(e.value.__cause__, TypeError)
    assert len(take_batches(iter(batches(6)), 4)) == 4
    model, _ = resnet20()
    with pytest.raises(ConfigError, match="batch 0 .*shape \\(2, 1, 8, 8\\)") as e:
        adaptive_bn_score(model, [(torch.randn(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))] * 2)
    assert e.value.__cause__ is not None
    with pytest.raises(ConfigError, match="class-index targets"):
        adaptive_bn_score(model, [(torch.randn(2, 3, 32, 32), torch.zeros(2, 10))] * 2)


# -- in a prune -------------------------------------------------------------------------------


def favour(layer):
    """A stand-in for the score: the wider ``layer`` is kept, the better (then: more channels kept)."""

    def score(model, data, **training):
        assert training == {"steps": 16, "lr": 0.01}  # the options' defaults reach the score
        return Score(0.0, -float(dict(model.named_modules())[layer].out_channels))

    return score


def test_a_prune_keeps_the_best_scoring_candidate_and_meets_the_measured_target(monkeypatch):
    monkeypatch.setattr(search, "adaptive_bn_score", favour("layer3.0.conv1"))
    model, x = resnet20()
    original = copy.deepcopy(model)
    options = dict(target_latency=0.5, scope="global", latency_backend="fake")
    plain = prunekit.prune(original, x, **options)[0]
    report = prunekit.prune_(model, x, **options, allocation_candidates=6, allocation_data=batches())
    found = report.config["allocation_search"]
    candidates = found["candidates"]
    assert set(candidates) == {"greedy", "uniform", *(f"perturbed {i}" for i in range(1, 6))}
    assert candidates[found["kept"]]["loss"] == min(c["loss"] for c in candidates.values()) and found["batches"] == 4
    assert candidates["greedy"]["placed"] == candidates["uniform"]["placed"] == "measured"
    assert {candidates[f"perturbed {i}"]["placed"] for i in range(1, 6)} == {"fits"}
    assert ("refit" in found) == (candidates[found["kept"]]["placed"] == "fits")
    assert report.latency["after_ms"] <= 0.5 * report.latency["before_ms"]  # measured, as without the search
    assert check_equivalence(original, model, x, report)
    assert plain.layer3[0].conv1.out_channels < model.layer3[0].conv1.out_channels


def test_a_count_target_places_every_candidate_at_the_budget(monkeypatch):
    monkeypatch.setattr(search, "adaptive_bn_score", favour("layer1.0.conv1"))
    model, x = resnet20()
    report = prunekit.prune_(
        model, x, target_macs=0.5, scope="global", latency_allocation=True, latency_backend="fake",
        allocation_candidates=4, allocation_data=batches(),
    )  # fmt: skip
    assert report.macs_ratio <= 0.5 and "refit" not in report.config["allocation_search"]
    assert report.latency is None  # nothing is timed under a MAC target


def test_without_candidates_nothing_is_scored(monkeypatch):
    monkeypatch.setattr(search, "adaptive_bn_score", lambda *a: pytest.fail("scored without allocation_candidates"))
    model, x = resnet20()
    report = prunekit.prune_(model, x, target_latency=0.5, scope="global", latency_backend="fake")
    assert "allocation_search" not in report.config


def test_missing_data_fails_before_anything_is_cut():
    model, x = resnet20()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError, match="allocation_data"):
        prunekit.prune_(model, x, target_latency=0.5, scope="global", latency_backend="fake", allocation_candidates=2)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_options_and_config_validation():
    with pytest.raises(ConfigError, match="allocation_candidates: must be an int >= 0"):
        PruneOptions(allocation_candidates=-1)
    with pytest.raises(ConfigError, match="allocation_batches: must be an int >= 2"):
        PruneOptions(allocation_batches=1)
    with pytest.raises(ConfigError, match="allocation_steps: must be an int >= 0"):
        PruneOptions(allocation_steps=1.5)
    with pytest.raises(ConfigError, match="allocation_lr: must be a number > 0"):
        PruneOptions(allocation_lr=float("nan"))
    with pytest.raises(ConfigError, match="allocation_candidates: chooses among latency allocations"):
        PruneOptions(target_latency=0.5, allocation_candidates=4)  # local scope stays uniform
    with pytest.raises(ConfigError, match="allocation_candidates: chooses among latency allocations"):
        PruneOptions(target_macs=0.5, scope="global", allocation_candidates=4)  # no latency allocation
    with pytest.raises(ConfigError, match="allocation_candidates"):
        PruneOptions(sparsity=0.5, scope="global", allocation_candidates=4)
    assert PruneOptions(target_latency=0.5, scope="global", allocation_candidates=4).allocation_candidates == 4
    assert PruneOptions(allocation_data=[1]) == PruneOptions()  # data is not part of what options compare
    with pytest.raises(ConfigError, match="allocation_candidates"):
        load_config({"scope": "global", "allocation_candidates": 4})  # a sparsity schedule: no target to meet
    with pytest.raises(ConfigError, match="allocation_candidates"):
        load_config({"scope": "global", "latency_allocation": True, "target_macs": 0.5, "allocation_candidates": 4})
    cfg = load_config({"scope": "global", "target_latency": 0.5, "mode": "physical", "allocation_candidates": 4})
    assert cfg.allocation_candidates == 4 and cfg.allocation_batches == 16
    with pytest.raises(ConfigError, match="allocation_data"):
        load_config({"scope": "global", "target_latency": 0.5, "mode": "physical", "allocation_data": [1]})


def test_cli_prune_scores_allocations_on_training_batches(tmp_path, capsys):
    import json

    from prunekit.cli import main

    fast = ["--batch-size", "16", "--max-batches", "1", "--eval-batches", "1", "--no-progress", "-q"]
    args = ["prune", "--model", "resnet20", "--target-latency", "0.6", "--latency-backend", "fake", "--scope", "global"]
    argv = [*args, "--allocation-candidates", "2", "--allocation-batches", "4", "--finetune-epochs", "0"]
    assert main([*argv, "--out", str(tmp_path / "p"), *fast]) == 0
    spec = json.loads((tmp_path / "p" / "model" / "prunekit.json").read_text())
    recipe = spec["extra"]["config"]["recipe"]
    assert recipe["allocation_candidates"] == 2 and recipe["allocation_batches"] == 4
    assert "allocation_data" not in recipe
    local = ["prune", "--model", "resnet20", "--target-latency", "0.6", "--allocation-candidates", "2"]
    assert main([*local, "--out", str(tmp_path / "o")]) == 2
    assert "--allocation-candidates: chooses among latency allocations" in capsys.readouterr().err


def test_the_report_shows_the_candidates_of_the_cut_round_to_auto_kept(monkeypatch):
    """Under a MAC target ``round_to="auto"`` searches at the probe's multiple and at 1; the
    report's candidates are those of the cut it keeps."""
    from prunekit.engine import latency_search
    from prunekit.latency import Alignment

    monkeypatch.setattr(search, "adaptive_bn_score", favour("layer2.0.conv1"))
    monkeypatch.setattr(latency_search, "best_multiple", lambda *a, **k: Alignment(8, "layer1.0.conv1", {1: 1.0}))
    model, x = resnet20()
    report = prunekit.prune_(
        model, x, target_macs=0.5, scope="global", latency_allocation=True, latency_backend="fake", round_to="auto",
        allocation_candidates=3, allocation_data=batches(),
    )  # fmt: skip
    kept = report.config["round_to"]
    removed = [c["channels_removed"] for c in report.config["allocation_search"]["candidates"].values()]
    assert set(report.config["round_to_auto"]["checked"]) == {"8", "1"}
    if kept == 8:
        assert all(n % 8 == 0 for n in removed)
    else:
        assert any(n % 8 for n in removed)


def test_batches_the_model_cannot_take_fail_the_prune_and_leave_the_model_as_it_was():
    model, x = resnet20()
    before = copy.deepcopy(model.state_dict())
    wrong = [(torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))] * 4
    with pytest.raises(ConfigError, match="allocation_data: the pruned candidate failed on batch 0") as e:
        prunekit.prune_(
            model, x, target_latency=0.5, scope="global", latency_backend="fake", allocation_candidates=2,
            allocation_data=wrong, allocation_steps=0,
        )  # fmt: skip
    assert e.value.__cause__ is not None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.conv1.out_channels == 16
