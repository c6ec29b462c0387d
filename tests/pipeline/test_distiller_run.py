"""A Distiller schedule (filter pruners, a thinning extension, an ExponentialLR) run by the
pipeline: the thinning cuts the model, the LR follows the schedule across the optimizer rebuild,
and a run killed after the thinning resumes to the same weights."""

from __future__ import annotations

import logging

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.pipeline import Phase, TrainOptions, read_history, run
from prunekit.recipes import load_recipe

from ..compat.distiller.test_recipe import FILTERS  # modelled on Distiller's resnet56 filter-rank example

OPTIONS = TrainOptions(epochs=4, max_batches=1, eval_batches=1, lr=0.1)


def _phases() -> list[Phase]:
    return [Phase("prune", OPTIONS, load_recipe(FILTERS))]


def test_distiller_schedule_thins_and_resumes(source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    train, test = loaders
    kw = dict(train_loader=train, val_loader=test, progress=False, save=False, report=False)
    ref = run(source, _phases(), out_dir=tmp_path / "a", **kw)
    full = prunekit.count_params(source.build())
    assert all(r["params"] < full for r in ref.history)  # thinned at epoch 0
    lrs = [r["lr"] for r in ref.history]
    # ExponentialLR(0.95) stepped at the end of epochs 1..4; the optimizer was rebuilt at the cut
    assert lrs == pytest.approx([0.1, 0.1, 0.095, 0.09025])

    def kill(state):  # type: ignore[no-untyped-def]
        if len(state["history"]) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(source, _phases(), out_dir=tmp_path / "b", on_epoch_end=kill, **kw)
    got = run(source, _phases(), out_dir=tmp_path / "b", resume=True, **kw)
    assert [r["lr"] for r in got.history] == lrs
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[name]), name


ELEMENTWISE = """
version: 1
pruners:
  fine:
    class: AutomatedGradualPruner
    initial_sparsity: 0.3
    final_sparsity: 0.6
    weights: [module.layer2.0.conv1.weight, module.layer3.0.conv2.weight]
policies:
  - pruner: {instance_name: fine}
    starting_epoch: 0
    ending_epoch: 3
"""


def _zeros(model: torch.nn.Module, name: str) -> float:
    return float((model.get_parameter(name) == 0).float().mean())


def test_elementwise_masks_are_kept_through_finetuning(source, loaders):  # type: ignore[no-untyped-def]
    """Issue 14 (1): the fine-tune phase keeps re-applying the element-wise masks."""
    train, test = loaders
    phases = [
        Phase("prune", TrainOptions(epochs=3, max_batches=1, eval_batches=1, lr=0.1), load_recipe(ELEMENTWISE)),
        Phase("finetune", TrainOptions(epochs=2, max_batches=2, eval_batches=1, lr=0.1)),
    ]
    got = run(source, phases, train_loader=train, val_loader=test, progress=False, save=False, report=False)
    assert [r["phase"] for r in got.history] == ["prune"] * 3 + ["finetune"] * 2
    for name in ("layer2.0.conv1.weight", "layer3.0.conv2.weight"):
        assert _zeros(got.model, name) == pytest.approx(0.6, abs=1e-3), name


ONE_SHOT_EXP_LR = """
version: 1
pruners:
  p:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight]
  fine:
    class: SparsityLevelParameterPruner
    levels: {module.layer2.0.conv1.weight: 0.5}
lr_schedulers:
  exp: {class: ExponentialLR, gamma: 0.5}
extensions:
  thin: {class: FilterRemover, thinning_func_str: remove_filters}
policies:
  - pruner: {instance_name: p}
    epochs: [0]
  - pruner: {instance_name: fine}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [0]
  - lr_scheduler: {instance_name: exp}
    starting_epoch: 1
    ending_epoch: 4
"""


def test_cli_runs_a_distiller_file_as_one_run_with_its_lr_policy(tmp_path, caplog):  # type: ignore[no-untyped-def]
    """Issue 14 (5): a one-shot file's ExponentialLR acts over the epochs the file describes; no
    fine-tune phase with prunekit's own schedule is added."""
    schedule = tmp_path / "s.yaml"
    schedule.write_text(ONE_SHOT_EXP_LR)
    out = tmp_path / "run"
    fast = ["--batch-size", "16", "--max-batches", "1", "--eval-batches", "1", "--no-progress", "--no-report"]
    with caplog.at_level(logging.INFO, logger="prunekit.cli"):
        args = ["prune", "--model", "resnet20", "--schedule", str(schedule), "--lr", "0.4", "--out", str(out)]
        assert main([*args, *fast]) == 0
    assert "Distiller schedule: one run of 4 epochs (the file spans 4); LR: ExponentialLR at epochs 1..3" in caplog.text
    rows = read_history(out / "history.csv")
    assert [r["phase"] for r in rows] == ["prune"] * 4
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.4, 0.4, 0.2, 0.1])
    model = prunekit.load(out / "model")
    assert model.layer1[0].conv1.out_channels == 8
    assert _zeros(model, "layer2.0.conv1.weight") == pytest.approx(0.5, abs=1e-3)
    # a separate prunekit finetune cannot keep the masks: it says so
    with caplog.at_level(logging.WARNING, logger="prunekit.cli"):
        tune = ["finetune", "--model-dir", str(out / "model"), "--epochs", "1", "--out", str(tmp_path / "t")]
        assert main([*tune, *fast]) == 0
    assert "1 weight tensors hold element-wise zeros (layer2.0.conv1.weight 50%)" in caplog.text


def test_torchvision_alexnet_on_28x28_images_is_a_clear_error(tmp_path, capsys):  # type: ignore[no-untyped-def]
    """Issue 14 (11): not a raw 'Output size is too small' traceback."""
    schedule = tmp_path / "s.yaml"
    schedule.write_text(ONE_SHOT_EXP_LR.replace("module.layer1.0.conv1.weight", "features.module.3.weight"))
    args = ["prune", "--model", "torchvision:alexnet", "--schedule", str(schedule), "--out", str(tmp_path / "o")]
    assert main([*args, "--batch-size", "4", "--max-batches", "1", "--eval-batches", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--model: torchvision:alexnet needs images of at least 63x63, but --data embedded gives 28x28" in err
    assert "--image-size 63" in err and "Traceback" not in err


def test_elementwise_run_resumes_from_its_compact_checkpoint(source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    """Bit-packed masks, each stored once, still resume to the same weights (issue 14: 12)."""
    train, test = loaders
    kw = dict(train_loader=train, val_loader=test, progress=False, save=False, report=False)

    def phases() -> list[Phase]:
        opts = TrainOptions(epochs=3, max_batches=1, eval_batches=1, lr=0.1)
        return [Phase("prune", opts, load_recipe(ELEMENTWISE)), Phase("finetune", opts)]

    ref = run(source, phases(), out_dir=tmp_path / "a", **kw)

    def kill(state):  # type: ignore[no-untyped-def]
        if len(state["history"]) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(source, phases(), out_dir=tmp_path / "b", on_epoch_end=kill, **kw)
    got = run(source, phases(), out_dir=tmp_path / "b", resume=True, **kw)
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[name]), name
    assert _zeros(got.model, "layer3.0.conv2.weight") == pytest.approx(0.6, abs=1e-3)
