"""target_latency, round_to="auto" and the latency report, on simulated backends (no timing)."""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings

import pytest
import torch

import prunekit
from prunekit.analysis import sensitivity_analysis
from prunekit.cli import build_parser
from prunekit.config import config_to_dict, load_config
from prunekit.engine import PruneOptions
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.models import get_model
from prunekit.report import latency_summary
from tests.latency import fakes


@pytest.fixture(autouse=True)
def backends(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    return fakes.register(), fakes.register_flat()


def resnet20():
    torch.manual_seed(0)
    return get_model("resnet20", num_classes=10, in_channels=3).eval(), torch.randn(2, 3, 32, 32)


def convs(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


@pytest.mark.parametrize("scope", ["global", "local"])
def test_target_latency_is_met_as_measured(scope):
    model, x = resnet20()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, target_latency=0.5, latency_backend="fake", scope=scope)
    lat = report.latency
    assert lat["backend"] == "fake" and lat["batch"] == 1 and lat["threads"] == 1
    assert lat["after_ms"] <= 0.5 * lat["before_ms"]
    assert report.config["realised"] == pytest.approx(lat["after_ms"] / lat["before_ms"])
    assert report.config["target_latency"] == 0.5 and lat["budget_ms"] == pytest.approx(0.5 * lat["before_ms"])
    assert lat["search"] and lat["speedup"] == pytest.approx(lat["before_ms"] / lat["after_ms"])
    # the realised figure is the pruned model's, measured again
    assert fakes.fake_cost(model, (x[:1],)) * 1e3 == pytest.approx(lat["after_ms"])
    assert fakes.fake_cost(original, (x[:1],)) * 1e3 == pytest.approx(lat["before_ms"])
    out = model(x)
    assert out.shape == (2, 10)


def test_auto_alignment_is_the_default_for_latency_targets():
    model, x = resnet20()
    report = prunekit.prune_(model, x, target_latency=0.6, latency_backend="fake", scope="global")
    assert report.config["round_to"] == 8 and report.config["round_to_auto"]["multiple"] == 8
    assert report.latency["round_to"] == 8
    widths = [m.out_channels for n, m in convs(model).items()]
    assert all(w % 8 == 0 for w in widths)
    assert "round_to 8" in str(report)


@pytest.mark.parametrize("target", [dict(target_macs=0.5), dict(target_params=0.5)])
def test_auto_alignment_is_checked_on_the_whole_cut(monkeypatch, target):
    """The probe says 8, but this backend runs the model slower at multiples of 8: the cut at
    round_to=1 is kept, and the report says why."""
    from prunekit.engine import latency_search
    from prunekit.latency import Alignment

    backend = fakes.register_aligned_slow()
    monkeypatch.setattr(latency_search, "best_multiple", lambda *a, **k: Alignment(8, "layer1.0.conv1", {1: 1.0}))
    model, x = resnet20()
    options = dict(scope="global", latency_allocation=True, round_to="auto")
    report = prunekit.prune_(model, x, **target, latency_backend=backend, **options)
    auto = report.config["round_to_auto"]
    assert report.config["round_to"] == 1 and auto["multiple"] == 1 and set(auto["checked"]) == {"8", "1"}
    rate = {m: c["macs"] / c["ms"] for m, c in auto["checked"].items()}
    assert rate["1"] > rate["8"]
    assert auto["verdict"]["rounds"] == latency_search.CHECK_ROUNDS
    assert auto["verdict"]["rate_1_over_aligned"] > 1 + auto["verdict"]["margin"]
    assert any(m.out_channels % 8 for m in convs(model).values())
    # the backend the probe is right about keeps the probe's multiple, with the same evidence
    model, x = resnet20()
    report = prunekit.prune_(model, x, **target, latency_backend="fake", **options)
    assert report.config["round_to"] == 8 and set(report.config["round_to_auto"]["checked"]) == {"8", "1"}


def test_auto_alignment_is_not_second_guessed_under_a_latency_budget(monkeypatch):
    """Under target_latency the cuts keep different MACs: the probe's multiple stands."""
    from prunekit.engine import latency_search
    from prunekit.latency import Alignment

    backend = fakes.register_aligned_slow()
    monkeypatch.setattr(latency_search, "best_multiple", lambda *a, **k: Alignment(8, "layer1.0.conv1", {1: 1.0}))
    model, x = resnet20()
    report = prunekit.prune_(model, x, target_latency=0.6, latency_backend=backend, scope="global")
    assert report.config["round_to"] == 8 and "checked" not in report.config["round_to_auto"]


def test_round_to_auto_with_a_sparsity_and_in_mask_():
    model, x = resnet20()
    report = prunekit.prune_(model, x, sparsity=0.3, round_to="auto", latency_backend="fake")
    assert report.config["round_to"] == 8 and report.latency is None  # not measured unless asked
    assert all(m.out_channels % 8 == 0 for m in convs(model).values())
    model, x = resnet20()
    masks = prunekit.mask_(model, x, sparsity=0.3, round_to="auto", latency_backend="fake")
    assert all((len(v) % 8) == 0 for v in masks.plan.removed.values())


@pytest.mark.parametrize("key", ["target_macs", "target_params"])
def test_latency_allocation_with_a_count_target(key):
    model, x = resnet20()
    report = prunekit.prune_(model, x, scope="global", latency_allocation=True, latency_backend="fake", **{key: 0.5})
    realised = report.macs_ratio if key == "target_macs" else report.params_ratio
    assert 0.4 < realised <= 0.5 and report.config["realised"] == realised
    assert report.latency is None and report.config["round_to"] == 1  # nothing measured unless asked


def test_latency_allocation_needs_global_scope_and_a_target():
    with pytest.raises(ConfigError, match="latency_allocation: needs scope='global'"):
        PruneOptions(target_macs=0.5, latency_allocation=True)
    with pytest.raises(ConfigError, match="latency_allocation: needs a target"):
        PruneOptions(sparsity=0.5, scope="global", latency_allocation=True)
    assert PruneOptions(target_latency=0.5, scope="global").allocates_by_latency
    assert not PruneOptions(target_latency=0.5, scope="global", latency_allocation=False).allocates_by_latency
    assert not PruneOptions(target_latency=0.5).allocates_by_latency  # local stays uniform


def test_report_latency_and_the_warning():
    model, x = resnet20()
    with pytest.warns(UserWarning, match="of the MAC reduction"):
        report = prunekit.prune_(model, x, sparsity=0.5, report_latency=True, latency_backend="flat")
    lat = report.latency
    assert lat["speedup"] == pytest.approx(1.0) and lat["mac_reduction"] > 2
    assert lat["warning"] and "WARNING" in str(report)
    assert report.to_dict()["latency"] == lat


def test_latency_summary_warnings():
    good = latency_summary(2e-3, 1e-3, 200, 100, backend="x", batch=1)
    assert good["speedup_per_mac_reduction"] == pytest.approx(1.0) and good["warning"] is None
    weak = latency_summary(2e-3, 1.5e-3, 300, 100, backend="x", batch=1)
    assert "0.44 of the MAC reduction" in weak["warning"] and "round_to='auto'" in weak["warning"]
    targeted = latency_summary(2e-3, 1.5e-3, 300, 100, backend="x", batch=1, budget_ms=1.5)
    assert "per-layer overhead" in targeted["warning"]
    slower = latency_summary(1e-3, 1.2e-3, 200, 100, backend="x", batch=1)
    assert "SLOWER" in slower["warning"]


def test_options_validation():
    assert PruneOptions().round_to == 1 and PruneOptions(target_latency=0.5).round_to == "auto"
    assert PruneOptions(target_latency=0.5, round_to=4).round_to == 4
    assert PruneOptions().replace(target_latency=0.5).round_to == "auto"
    assert PruneOptions(round_to=4).replace(target_latency=0.5).round_to == 4
    assert PruneOptions(target_latency=0.5).measures_latency and not PruneOptions(sparsity=0.5).measures_latency
    with pytest.raises(ConfigError, match="exactly one"):
        PruneOptions(target_macs=0.5, target_latency=0.5)
    with pytest.raises(ConfigError, match="target_latency must be a fraction"):
        prunekit.prune_(*resnet20(), target_latency=0)
    with pytest.raises(UnknownNameError, match="did you mean 'onnxruntime'"):
        PruneOptions(latency_backend="onnxruntme")
    for name, bad in [("latency_batch", 0), ("latency_threads", 1.5), ("round_to", "fast"), ("report_latency", 1),
                      ("latency_balance", -1), ("latency_balance", True), ("latency_balance", "2")]:  # fmt: skip
        with pytest.raises(ConfigError, match=name):
            PruneOptions(**{name: bad})
    assert PruneOptions(latency_balance=2).latency_balance == 2.0 and PruneOptions().latency_balance == 1.0


def test_round_to_auto_is_refused_where_nothing_is_measured():
    model, x = resnet20()
    data = [(x, torch.zeros(2, dtype=torch.long))]
    with pytest.raises(ConfigError, match="'auto' is resolved by prune_ and mask_"):
        sensitivity_analysis(model, x, data, round_to="auto", sparsities=(0.5,), progress=False)


def test_yaml_schema():
    cfg = load_config({"target_latency": 0.5, "latency_backend": "onnxruntime", "mode": "physical"})
    assert cfg.round_to == "auto" and cfg.target == ("target_latency", 0.5)
    assert load_config(config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="target_latency: needs mode: physical"):
        load_config({"target_latency": 0.5})
    with pytest.raises(ConfigError, match="latency_batch"):
        load_config({"target_latency": 0.5, "mode": "physical", "latency_batch": 0})


def test_cli_flags():
    args = build_parser().parse_args(
        ["prune", "--model", "resnet20", "--out", "o", "--target-latency", "0.5", "--latency-backend", "onnxruntime",
         "--latency-batch", "32", "--latency-threads", "2", "--round-to", "auto", "--report-latency",
         "--latency-allocation", "--latency-balance", "2", "--scope", "global"]
    )  # fmt: skip
    assert args.latency_balance == 2.0
    assert (args.target_latency, args.latency_backend, args.latency_batch, args.latency_threads) == (
        0.5, "onnxruntime", 32, 2,
    )  # fmt: skip
    assert args.round_to == "auto" and args.report_latency is True and args.latency_allocation is True
    assert (
        build_parser()
        .parse_args(["prune", "--model", "resnet20", "--out", "o", "--sparsity", "0.5", "--round-to", "8"])
        .round_to
        == 8
    )


def test_every_option_field_is_documented():
    for f in dataclasses.fields(PruneOptions):
        assert f.metadata.get("help"), f.name


def test_list_latency_backends(capsys):
    from prunekit.cli import main

    assert main(["list", "latency-backends"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "torch" in out and "cuda" in out


def test_cli_prune_to_a_latency_target(tmp_path, capsys):
    from prunekit.cli import main

    fast = ["--batch-size", "16", "--max-batches", "1", "--eval-batches", "1", "--no-progress", "-q"]
    args = ["prune", "--model", "resnet20", "--target-latency", "0.6", "--latency-backend", "fake", "--scope", "global"]
    assert main([*args, "--finetune-epochs", "0", "--no-report", "--out", str(tmp_path / "p"), *fast]) == 0
    spec = json.loads((tmp_path / "p" / "model" / "prunekit.json").read_text())
    recipe = spec["extra"]["config"]["recipe"]
    assert recipe["target_latency"] == 0.6 and recipe["latency_backend"] == "fake" and recipe["round_to"] == "auto"
    for argv, needle in [
        (["--target-latency", "2"], "--target-latency: must be a fraction"),
        (["--target-latency", "0.5", "--latency-backend", "onnxruntme"], "--latency-backend: unknown latency backend"),
    ]:
        assert main(["prune", "--model", "resnet20", *argv, "--out", str(tmp_path / "o")]) == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prune", "--model", "resnet20", "--sparsity", "0.5", "--round-to", "fast", "--out", str(tmp_path / "o")])
    assert "--round-to: must be an int >= 1, but got 'fast' (or 'auto')" in capsys.readouterr().err


def test_an_unreachable_latency_target_is_warned():
    model, x = resnet20()
    with pytest.warns(UserWarning, match="target_latency=0.5 is out of reach"):
        report = prunekit.prune_(model, x, target_latency=0.5, latency_backend="flat", scope="global")
    assert report.config["realised"] == pytest.approx(1.0)


def _halve_on_simulated(name: str, prepare) -> tuple:  # noqa: ANN001 -- a backend's prepare
    """Prunes ResNet-20 to ``target_latency=0.5`` on a simulated backend ``name`` whose runs are
    made by ``prepare`` on the fake clock (registered once); returns the report and the true
    latency ratio (the fake cost model's, which no timing noise touches)."""
    from prunekit.latency import LATENCY_BACKENDS, LatencyBackend

    if name not in LATENCY_BACKENDS:
        backend = LatencyBackend(name, f"simulated {name}", prepare, lambda: None, lambda: {}, clock=fakes.CLOCK)
        LATENCY_BACKENDS.add(name, backend, description=f"simulated {name} machine for tests")
    model, x = resnet20()
    original = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = prunekit.prune_(model, x, target_latency=0.5, latency_backend=name, scope="local", round_to=1)
    return report, fakes.fake_cost(model, (x[:1],)) / fakes.fake_cost(original, (x[:1],))


def test_a_slow_first_reading_of_the_original_does_not_pass_a_barely_pruned_candidate():
    """The machine is twice as slow while the original is first timed (a cold start, a busy
    neighbour): the budget from that reading is twice too generous. Candidates under it are
    confirmed against the original timed again, so the search still halves the real latency."""
    readings = {"n": 0}

    def prepare(model, inputs, threads):
        cost = fakes.fake_cost(model, inputs)

        def run() -> None:
            readings["n"] += 1
            fakes.CLOCK.now += cost * (2.0 if readings["n"] <= 40 else 1.0)

        return run

    report, true_ratio = _halve_on_simulated("drifting", prepare)
    assert true_ratio <= 0.55
    assert any("original_ms" in t for t in report.latency["search"])


def test_a_machine_that_gets_busy_during_the_search_does_not_end_it_at_the_most_pruning():
    """The machine becomes 20 times slower after the original is first timed (another job
    starts) and stays so. Timed alone, the most pruned candidate would read over budget and the
    search would keep the most pruning there is; timed paired with the original, every verdict
    is the ratio at the same moment, and the prune lands near the target."""
    state = {"prepared": 0, "load": 1.0}

    def prepare(model, inputs, threads):
        state["prepared"] += 1
        if state["prepared"] == 2:  # the first candidate: the other job starts now
            state["load"] = 20.0
        cost = fakes.fake_cost(model, inputs)

        def run() -> None:
            fakes.CLOCK.now += cost * state["load"]

        return run

    report, true_ratio = _halve_on_simulated("busy", prepare)
    assert 0.4 <= true_ratio <= 0.5
    assert report.config["realised"] == pytest.approx(true_ratio)  # the final figure is paired too
    assert all(t["original_ms"] > 0 for t in report.latency["search"])


def test_the_latency_table_is_saved_for_the_next_prune(tmp_path):
    import os

    model, x = resnet20()
    prunekit.prune(model, x, target_latency=0.6, latency_backend="fake", scope="global")
    files = list((tmp_path / "cache").glob("latency-fake-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["entries"]
    assert os.environ["PRUNEKIT_CACHE_DIR"] == str(tmp_path / "cache")
    calls = fakes.CALLS["prepare"]
    report = prunekit.prune(model, x, target_latency=0.6, latency_backend="fake", scope="global")[1]
    assert report.latency["table"]["measured"] == 0  # every layer read from the file
    assert fakes.CALLS["prepare"] > calls
