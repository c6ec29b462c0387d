"""A run killed after any epoch and resumed ends with bit-identical weights (CPU, one thread).

The kill is simulated by raising from ``on_epoch_end`` right after the checkpoint is written;
the resumed run rebuilds the model from its source, replays the recorded decisions (a mask, then
a physical cut), and loads weights, optimizer, LR position, recipe and RNG state.
"""

from __future__ import annotations

import pytest
import torch

from prunekit.pipeline import Phase, TrainOptions, load_checkpoint, run
from prunekit.schedules.recipe import LRSchedulerSpec

from .toy_recipe import ToyRecipe


class Killed(Exception):
    pass


def _phases() -> list[Phase]:
    train = TrainOptions(epochs=1, max_batches=2, eval_batches=1, lr=0.05, warmup_epochs=0.5)
    prune = TrainOptions(epochs=3, max_batches=2, eval_batches=1, lr=0.02, nesterov=True)
    tune = TrainOptions(epochs=2, max_batches=2, eval_batches=1, lr=0.01, distill=True, label_smoothing=0.1)
    return [Phase("train", train), Phase("prune", prune, ToyRecipe()), Phase("finetune", tune)]


def _run(source, loaders, out, **kw):  # type: ignore[no-untyped-def]
    train, test = loaders
    return run(source, _phases(), train_loader=train, val_loader=test, out_dir=out, progress=False, seed=3, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):  # type: ignore[no-untyped-def]
    from prunekit.data import make_loaders
    from prunekit.pipeline import ModelSource

    torch.set_num_threads(1)
    source = ModelSource("resnet20", num_classes=10, in_channels=1)
    out = tmp_path_factory.mktemp("uninterrupted")
    return _run(source, make_loaders(batch_size=16, seed=0), out, save=False, report=False)


@pytest.mark.parametrize("kill_after", [1, 2, 4])  # in the prune phase, after its cut, and in fine-tuning
def test_resume_after_kill_is_bitwise_identical(reference, source, loaders, tmp_path, kill_after):  # type: ignore[no-untyped-def]
    epochs = []

    def kill(state):  # type: ignore[no-untyped-def]
        epochs.append(state["history"][-1]["epoch"])
        if epochs[-1] == kill_after:
            raise Killed

    with pytest.raises(Killed):
        _run(source, loaders, tmp_path, on_epoch_end=kill, save=False, report=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert len(ckpt["history"]) == kill_after + 1
    resumed = _run(source, loaders, tmp_path, resume=True, save=False, report=False)
    ref = reference.model.state_dict()
    got = resumed.model.state_dict()
    assert list(ref) == list(got)
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in reference.history]
    assert resumed.metrics == reference.metrics


def test_resume_needs_the_same_model(source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    from prunekit.errors import ConfigError
    from prunekit.pipeline import ModelSource

    train, test = loaders
    opts = TrainOptions(epochs=1, max_batches=1, eval_batches=1)
    run(source, [Phase("train", opts)], train_loader=train, val_loader=test, out_dir=tmp_path, progress=False)
    other = ModelSource("resnet32", num_classes=10, in_channels=1)
    with pytest.raises(ConfigError, match="resume"):
        run(other, [Phase("train", opts)], train_loader=train, val_loader=test, out_dir=tmp_path, resume=True)


class ScheduledToyRecipe(ToyRecipe):
    """The toy recipe with a Distiller-style LR scheduler: halve the LR after each epoch."""

    lr_schedulers = (LRSchedulerSpec("StepLR", {"step_size": 1, "gamma": 0.5}, epochs=(0, 1, 2)),)


def test_recipe_lr_scheduler_keeps_its_position_across_the_cut_and_a_resume(source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    train, test = loaders
    opts = TrainOptions(epochs=3, max_batches=2, eval_batches=1, lr=0.08)
    kw = dict(train_loader=train, val_loader=test, progress=False, save=False, report=False)
    ref = run(source, [Phase("prune", opts, ScheduledToyRecipe())], out_dir=tmp_path / "a", **kw)
    # the optimizer is rebuilt at epoch 1 (physical cut); the LR still halves once per epoch
    assert [r["lr"] for r in ref.history] == pytest.approx([0.08, 0.04, 0.02])

    def kill(state):  # type: ignore[no-untyped-def]
        if len(state["history"]) == 2:
            raise Killed

    with pytest.raises(Killed):
        run(source, [Phase("prune", opts, ScheduledToyRecipe())], out_dir=tmp_path / "b", on_epoch_end=kill, **kw)
    got = run(source, [Phase("prune", opts, ScheduledToyRecipe())], out_dir=tmp_path / "b", resume=True, **kw)
    assert [r["lr"] for r in got.history] == [r["lr"] for r in ref.history]
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[name]), name
