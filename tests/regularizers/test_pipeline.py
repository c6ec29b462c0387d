"""The ``sparsify`` phase: penalty and ``reg_below`` in history.csv, the prune that follows, and resume."""

from __future__ import annotations

import pytest
import torch

from prunekit.criteria import RandomCriterion
from prunekit.data import make_loaders
from prunekit.errors import ConfigError
from prunekit.pipeline import ModelSource, Phase, TrainOptions, load_checkpoint, read_history, run
from prunekit.recipes import recipe_from_options
from prunekit.regularizers import GroupLasso, GrowingRegularizer


class Killed(Exception):
    pass


def _phases(regularizer) -> list[Phase]:  # type: ignore[no-untyped-def]
    sparsify = TrainOptions(epochs=3, max_batches=2, eval_batches=1, lr=0.05)
    prune = TrainOptions(epochs=0, eval_batches=1)
    tune = TrainOptions(epochs=1, max_batches=2, eval_batches=1, lr=0.01)
    return [
        Phase("sparsify", sparsify, regularizer=regularizer, threshold=0.5),
        Phase("prune", prune, recipe_from_options(sparsity=0.3)),
        Phase("finetune", tune),
    ]


def _run(phases, out, **kw):  # type: ignore[no-untyped-def]
    train, test = make_loaders(batch_size=16, seed=0)
    source = ModelSource("resnet20", num_classes=10, in_channels=1)
    return run(
        source, phases, train_loader=train, val_loader=test, out_dir=out, progress=False, seed=3,
        save=False, report=False, **kw,
    )  # fmt: skip


def test_sparsify_logs_the_penalty_and_the_prune_follows(tmp_path):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    result = _run(_phases(GroupLasso(strength=1e-3)), tmp_path)
    rows = read_history(tmp_path / "history.csv")
    assert [r["phase"] for r in rows] == ["sparsify"] * 3 + ["prune", "finetune"]
    assert all(float(r["penalty"]) > 0 for r in rows[:3]) and rows[3]["penalty"] == ""
    assert all(0.0 <= float(r["reg_below"]) <= 1.0 for r in rows[:3])
    assert "after_sparsify" in result.metrics["accuracy"]
    assert result.metrics["macs"]["after_prune"] < result.metrics["macs"]["after_sparsify"]


@pytest.mark.parametrize("kill_after", [0, 1])
def test_resume_in_a_greg_phase_is_bitwise_identical(tmp_path, kill_after):  # type: ignore[no-untyped-def]
    """GReg's selection (made at the phase start) comes back from the checkpoint, and its
    coefficient from the phase's step. The resumed run is given a criterion with another seed: a
    run that chose again instead of restoring would push other channels and end elsewhere."""
    torch.set_num_threads(1)

    def greg(seed: int = 1) -> GrowingRegularizer:
        return GrowingRegularizer(sparsity=0.3, delta=0.05, interval=1, criterion=RandomCriterion(seed=seed))

    reference = _run(_phases(greg()), tmp_path / "ref")

    def kill(state):  # type: ignore[no-untyped-def]
        if state["history"][-1]["epoch"] == kill_after:
            raise Killed

    with pytest.raises(Killed):
        _run(_phases(greg()), tmp_path / "run", on_epoch_end=kill)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["regularizers"]["0"]["selected"]
    resumed = _run(_phases(greg(seed=2)), tmp_path / "run", resume=True)
    ref, got = reference.model.state_dict(), resumed.model.state_dict()
    assert list(ref) == list(got)
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
    assert [r["penalty"] for r in resumed.history] == [r["penalty"] for r in reference.history]


def test_a_regularizer_belongs_to_a_sparsify_phase_only():
    with pytest.raises(ConfigError, match="needed by, and only by, a sparsify phase"):
        Phase("sparsify", TrainOptions())
    with pytest.raises(ConfigError, match="needed by, and only by, a sparsify phase"):
        Phase("train", TrainOptions(), regularizer=GroupLasso())
    with pytest.raises(ConfigError, match="threshold: must be a number >= 0"):
        Phase("sparsify", TrainOptions(), regularizer=GroupLasso(), threshold=-1)
