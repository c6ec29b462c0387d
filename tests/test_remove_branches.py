"""``remove_branches``: whole residual branches go through prune_, exactly, and the pruned model
reports, saves, reloads, exports and prunes again (simulated latency backends, no timing)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.cli import build_parser
from prunekit.config import load_config
from prunekit.criteria.base import Criterion
from prunekit.equivalence import check_equivalence
from prunekit.errors import ConfigError
from prunekit.models import get_model
from prunekit.reporting import write_report
from prunekit.surgery.standins import ConstantOutput, Emptied
from tests.latency import fakes


@pytest.fixture(autouse=True)
def backends(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    fakes.register()


def resnet20(in_channels: int = 3):
    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=10, in_channels=in_channels).eval()
    for m in model.modules():  # shifts and statistics away from identity: constant branches are not 0
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model, torch.randn(2, in_channels, 32, 32)


LATENCY = dict(scope="global", latency_allocation=True, remove_branches=True, latency_backend="fake")


@pytest.mark.parametrize("target", [dict(target_macs=0.4), dict(target_latency=0.4)])
def test_latency_allocation_removes_branches_exactly(target):
    model, x = resnet20()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, **LATENCY, **target)
    removed = report.removed_branches
    assert removed and all(isinstance(model.get_submodule(n), ConstantOutput) for n in removed)
    for name in removed:  # the branch's first conv and its batch norm compute nothing
        block = name.rsplit(".", 1)[0]
        assert isinstance(model.get_submodule(block + ".conv1"), Emptied)
        assert isinstance(model.get_submodule(block + ".bn1"), Emptied)
    assert check_equivalence(original, model, x, report).ok
    if "target_macs" in target:
        assert report.macs_ratio <= 0.4
    else:
        assert report.latency["after_ms"] <= 0.4 * report.latency["before_ms"]
    assert "branches removed" in str(report) and report.to_dict()["removed_branches"] == removed


def test_without_the_option_no_layer_is_replaced():
    model, x = resnet20()
    report = prunekit.prune_(model, x, **{**LATENCY, "remove_branches": False}, target_macs=0.4)
    assert report.removed_branches == []
    assert not any(isinstance(m, (Emptied, ConstantOutput)) for m in model.modules())


class OneFlatGroup(Criterion):
    """Equal scores in the inner group of ``layer3.2``, spread ones elsewhere: after mean
    normalisation that group's channels all sit at 1, the middle of every other group's."""

    name = "one_flat_group"

    def scores(self, model, group):
        if any(m.module == "layer3.2.conv1" and m.role == "out" for m in group.members):
            return np.ones(group.size)
        return np.linspace(0.1, 1.9, group.size)


def test_global_ranking_removes_a_branch_whose_channels_all_rank_low():
    model, x = resnet20()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.7, scope="global", remove_branches=True, criterion=OneFlatGroup())
    assert report.removed_branches == ["layer3.2.conv2"]
    assert check_equivalence(original, model, x, report).ok
    # without the option the group keeps what max_group_sparsity allows
    model = copy.deepcopy(original)
    report = prunekit.prune_(model, x, sparsity=0.7, scope="global", criterion=OneFlatGroup())
    assert report.removed_branches == [] and model.layer3[2].conv1.out_channels >= 0.1 * 64


def test_save_load_export_and_prune_again(tmp_path):
    model, x = resnet20(in_channels=1)
    x = x[:, :, :28, :28]
    original = copy.deepcopy(model)
    first = prunekit.prune_(model, x, target_macs=0.4, **LATENCY)
    assert first.removed_branches
    path = tmp_path / "r20"
    kwargs = {"num_classes": 10, "in_channels": 1}
    prunekit.save(model, path, reports=first, builder="resnet20", builder_kwargs=kwargs)
    loaded = prunekit.load(path).eval()
    assert [n for n, m in loaded.named_modules() if isinstance(m, ConstantOutput)] == first.removed_branches
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))

    # a second cut thins the residual streams, the constant branches' outputs with them
    before_second = copy.deepcopy(model)
    second = prunekit.prune_(model, x, sparsity=0.5)
    assert check_equivalence(before_second, model, x, second).ok
    stand = model.get_submodule(first.removed_branches[-1])
    assert stand.out_channels == model.get_submodule(first.removed_branches[-1].replace("conv2", "bn2")).num_features
    prunekit.save(model, tmp_path / "twice", reports=[first, second], builder="resnet20", builder_kwargs=kwargs)
    with torch.no_grad():
        torch.testing.assert_close(prunekit.load(tmp_path / "twice").eval()(x), model(x))
    assert not torch.allclose(model(x), original(x))

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from prunekit.export import export_onnx, verify_export

    onnx_file = export_onnx(loaded, x, tmp_path / "m.onnx")
    assert max(verify_export(loaded, x, onnx=onnx_file, batch_sizes=(1, 3)).values()) < 1e-4


def test_the_report_lists_removed_branches(tmp_path):
    model, x = resnet20()
    before = copy.deepcopy(model)
    report = prunekit.prune_(model, x, target_macs=0.4, **LATENCY)
    files = write_report(tmp_path, model_before=before, model_after=model, example_inputs=x, prune_reports=report,
                         latency=False)  # fmt: skip
    data = json.loads(files["json"].read_text())
    assert data["prune_steps"][0]["removed_branches"] == report.removed_branches
    md = files["markdown"].read_text()
    assert "## Removed branches" in md and f"`{report.removed_branches[0]}`" in md


def test_the_option_needs_global_scope_and_is_in_yaml_and_cli(tmp_path):
    with pytest.raises(ConfigError, match="remove_branches.*scope='global'"):
        prunekit.PruneOptions(sparsity=0.5, remove_branches=True)
    with pytest.raises(ConfigError, match="remove_branches: must be true or false"):
        prunekit.PruneOptions(sparsity=0.5, scope="global", remove_branches="yes")
    f = tmp_path / "c.yaml"
    f.write_text("version: 1\nscope: global\nremove_branches: true\nschedule: {kind: one_shot, final: 0.5}\n")
    assert load_config(f).remove_branches is True
    argv = ["prune", "--model", "resnet20", "--sparsity", "0.5", "--out", str(tmp_path / "o"), "--remove-branches"]
    args = build_parser().parse_args([*argv, "--scope", "global"])
    assert args.remove_branches is True


def test_masks_zero_what_the_removed_branch_no_longer_computes():
    """mask_ keeps shapes: the emptied layers' weights are zeroed and the constant layer keeps
    only its bias, so the masked model computes what the thinned one does."""
    model, x = resnet20()
    masks = prunekit.mask_(model, x, sparsity=0.7, scope="global", remove_branches=True, criterion=OneFlatGroup())
    assert float(model.layer3[2].conv1.weight.abs().sum()) == 0.0 and float(model.layer3[2].bn1.bias.abs().sum()) == 0
    with torch.no_grad():
        masked = model(x)
        masks.thin_(model)
        torch.testing.assert_close(model(x), masked)
    assert isinstance(model.layer3[2].conv2, ConstantOutput)


@pytest.mark.parametrize("mode", ["physical", "masked"])
def test_a_gradual_global_schedule_removes_branches_along_the_way(mode):
    from prunekit.schedules import PruningScheduler

    model, x = resnet20()
    sched = PruningScheduler(
        "iterative",
        options=dict(final=0.8, start=0, end=2, steps=2),
        mode=mode,
        scope="global",
        remove_branches=True,
        criterion=OneFlatGroup(),
    )
    removed = []
    for step in range(3):
        result = sched.step(model, x, step)
        removed += result.report.removed_branches if result.report is not None else []
    if mode == "masked":
        with torch.no_grad():
            masked = model.eval()(x)
        assert sched.finalize(model)
        with torch.no_grad():
            torch.testing.assert_close(model(x), masked)
    else:
        assert removed == ["layer3.2.conv2"]  # at the second cut, the first one thinned it
    assert isinstance(model.layer3[2].conv2, ConstantOutput) and model(x).shape == (2, 10)


def test_cli_prune_removes_branches_and_saves_them(tmp_path, capsys):
    """prunekit prune --remove-branches: the cut, fine-tuning and the saved model carry the
    stand-ins (simulated latency backend), and --remove-branches without global scope is an
    exit 2 naming the option."""
    from prunekit.cli import main

    fast = ["--batch-size", "16", "--max-batches", "1", "--eval-batches", "1", "--no-progress", "-q"]
    args = ["prune", "--model", "resnet20", "--target-macs", "0.4", "--latency-allocation", "--latency-backend", "fake"]
    out = tmp_path / "p"
    argv = [*args, "--scope", "global", "--remove-branches", "--finetune-epochs", "1", "--out", str(out), *fast]
    assert main([*argv, "--mode", "physical"]) == 0
    loaded = prunekit.load(out / "model")
    assert any(isinstance(m, ConstantOutput) for m in loaded.modules())
    assert "## Removed branches" in (out / "report" / "report.md").read_text()
    capsys.readouterr()
    assert (
        main(["prune", "--model", "resnet20", "--sparsity", "0.5", "--remove-branches", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "--remove-branches: removes a branch" in capsys.readouterr().err
