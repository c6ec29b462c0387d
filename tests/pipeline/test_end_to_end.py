"""Train -> prune with a YAML schedule -> fine-tune with distillation -> save -> load, on the
embedded Fashion-MNIST subset with a few batches per epoch (not timed)."""

from __future__ import annotations

import json

import pytest
import torch

import prunekit
from prunekit.pipeline import HISTORY_COLUMNS, Phase, TrainOptions, load_checkpoint, read_history, run
from prunekit.recipes import load_recipe

SCHEDULE = """\
version: 1
criterion: l1
mode: masked
schedule:
  kind: agp
  initial: 0.1
  final: 0.5
  start: 0
  end: 2
  frequency: 1
"""

FAST = dict(max_batches=2, eval_batches=2)


def _prune_phases(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "schedule.yaml"
    path.write_text(SCHEDULE)
    return [
        Phase("prune", TrainOptions(epochs=3, lr=0.02, **FAST), load_recipe(path)),
        Phase("finetune", TrainOptions(epochs=1, lr=0.01, distill=True, **FAST)),
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    from prunekit.data import make_loaders
    from prunekit.pipeline import ModelSource

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train")
    train, test = make_loaders(batch_size=16, seed=0)
    source = ModelSource("resnet20", num_classes=10, in_channels=1)
    run(
        source,
        [Phase("train", TrainOptions(epochs=1, **FAST))],
        train_loader=train,
        val_loader=test,
        out_dir=out,
        progress=False,
    )
    return out


def test_train_prune_finetune_save_load(trained, source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    train, test = loaders
    start = load_checkpoint(trained)
    assert prunekit.load(trained / "model").state_dict().keys() == start["model"].keys()
    out = tmp_path / "prune"
    result = run(
        source, _prune_phases(tmp_path), train_loader=train, val_loader=test, out_dir=out, progress=False,
        initial_state=start["model"], config={"schedule": SCHEDULE},
    )  # fmt: skip
    m = result.metrics
    assert set(m["accuracy"]) == {"before", "after_prune", "after_finetune"}
    assert m["params"]["after_finetune"] < 0.5 * m["params"]["before"]
    assert m["macs"]["after_prune"] == m["macs"]["after_finetune"] < m["macs"]["before"]

    # CSV log: one row per epoch, the prune epochs first, sparsity rising
    rows = read_history(out / "history.csv")
    assert list(rows[0]) == list(HISTORY_COLUMNS)
    assert [r["phase"] for r in rows] == ["prune"] * 3 + ["finetune"]
    sparsity = [float(r["sparsity"]) for r in rows]
    assert sparsity[0] > 0 and sparsity == sorted(sparsity)

    # the saved model and its original: rebuilt from the builder, same outputs
    loaded = prunekit.load(out / "model").eval()
    x = next(iter(test))[0][:8]
    with torch.no_grad():
        assert torch.equal(loaded(x), result.model.eval()(x))
    original = prunekit.load(out / "original")
    assert prunekit.count_params(original) == m["params"]["before"]
    assert json.loads((out / "config.json").read_text()) == {"schedule": SCHEDULE}
    assert json.loads((out / "model" / "prunekit.json").read_text())["extra"]["config"] == {"schedule": SCHEDULE}

    # the report of the run
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["accuracy"]["after_finetune"] == pytest.approx(m["accuracy"]["after_finetune"])
    assert (out / "report" / "channels.png").is_file()


def test_yaml_schedule_run_resumes_identically(trained, source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    """Killed after the second masked AGP step; the resume replays both masks, then finalizes."""
    train, test = loaders
    start = load_checkpoint(trained)["model"]
    kw = dict(train_loader=train, val_loader=test, progress=False, initial_state=start, save=False, report=False)
    ref = run(source, _prune_phases(tmp_path), out_dir=tmp_path / "a", **kw)

    def kill(state):  # type: ignore[no-untyped-def]
        if len(state["history"]) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(source, _prune_phases(tmp_path), out_dir=tmp_path / "b", on_epoch_end=kill, **kw)
    got = run(source, _prune_phases(tmp_path), out_dir=tmp_path / "b", resume=True, **kw)
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[name]), name


def test_a_recipe_that_scores_allocations_gets_its_batches_from_the_run(source, loaders, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """``allocation_candidates`` in a YAML recipe: the run hands the prune ``allocation_batches``
    training batches (more than its ``calibration_batches``), and the report says what was scored."""
    from tests.latency import fakes

    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    backend = fakes.register()
    recipe = load_recipe(
        {"scope": "global", "target_macs": 0.6, "latency_allocation": True, "latency_backend": backend,
         "mode": "physical", "allocation_candidates": 2, "allocation_batches": 6}
    )  # fmt: skip
    assert recipe.needs_data and recipe.data_batches == 6
    train, test = loaders
    result = run(
        source, [Phase("prune", TrainOptions(epochs=1, lr=0.01, **FAST), recipe)], train_loader=train,
        val_loader=test, out_dir=tmp_path, progress=False, save=False, report=False, calibration_batches=2,
    )  # fmt: skip
    (report,) = result.reports
    searched = report.config["allocation_search"]
    assert searched["batches"] == 6 and set(searched["candidates"]) == {"greedy", "uniform", "perturbed 1"}
    assert report.macs_ratio <= 0.6
