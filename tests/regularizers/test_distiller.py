"""Distiller's L1Regularizer and GroupLassoRegularizer: parsed, their formulas, and run by policy epochs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from prunekit.compat.distiller.regularizers import DistillerPenalty, distiller_group_norms, parse_regularizer
from prunekit.data import make_loaders
from prunekit.errors import ConfigError
from prunekit.pipeline import ModelSource, Phase, TrainOptions, read_history, run
from prunekit.recipes import load_recipe

EPS = 1e-8


def test_group_norms_match_distillers_definitions():
    torch.manual_seed(0)
    w = torch.randn(4, 3, 2, 2)
    sq = w.pow(2)
    torch.testing.assert_close(distiller_group_norms(w, "3D"), (sq.sum(dim=(1, 2, 3)) + EPS).sqrt())
    torch.testing.assert_close(distiller_group_norms(w, "Filters"), (sq.sum(dim=(1, 2, 3)) + EPS).sqrt())
    torch.testing.assert_close(distiller_group_norms(w, "Channels"), (sq.sum(dim=(0, 2, 3)) + EPS).sqrt())
    torch.testing.assert_close(distiller_group_norms(w, "2D"), (sq.sum(dim=(2, 3)).reshape(-1) + EPS).sqrt())
    torch.testing.assert_close(distiller_group_norms(w, "4D"), w.norm().reshape(1))
    m = torch.randn(5, 6)
    torch.testing.assert_close(distiller_group_norms(m, "Rows"), (m.pow(2).sum(1) + EPS).sqrt())
    torch.testing.assert_close(distiller_group_norms(m, "Cols"), (m.pow(2).sum(0) + EPS).sqrt())


def test_penalty_and_gradient_of_l1_and_group_lasso():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 1), nn.Flatten(), nn.LazyLinear(2))
    net(torch.randn(1, 2, 5, 5))
    specs = [
        parse_regularizer("gl", {"class": "GroupLassoRegularizer",
                                 "reg_regims": {"module.0.weight": [0.1, "3D"], "2.weight": [0.2, "Channels"],
                                                "4.weight": [0.3, "Rows+Cols"]}}, "regularizers.gl"),
        parse_regularizer("l1", {"class": "L1Regularizer", "reg_regims": {"0.bias": 0.5}}, "regularizers.l1"),
    ]  # fmt: skip
    reg = DistillerPenalty(specs)
    reg.setup(net, None)  # type: ignore[arg-type]  # per-layer groups need no graph
    p = reg.penalty(net)
    w0, w2, w4 = net[0].weight, net[2].weight, net[4].weight
    expected = (
        0.1 * (w0.pow(2).sum(dim=(1, 2, 3)) + EPS).sqrt().sum()
        + 0.2 * (w2.pow(2).sum(dim=(0, 2, 3)) + EPS).sqrt().sum()
        + 0.3 * ((w4.pow(2).sum(1) + EPS).sqrt().sum() + (w4.pow(2).sum(0) + EPS).sqrt().sum())
        + 0.5 * net[0].bias.abs().sum()
    )
    torch.testing.assert_close(p, expected)
    p.backward()
    filt = (w0.detach().pow(2).sum(dim=(1, 2, 3), keepdim=True) + EPS).sqrt()
    torch.testing.assert_close(w0.grad, 0.1 * w0.detach() / filt)
    torch.testing.assert_close(net[0].bias.grad, 0.5 * net[0].bias.detach().sign())


@pytest.mark.parametrize(
    "entry, needle",
    [
        ({"class": "GroupLassoRegularizer", "reg_regims": {"a.weight": 0.1}}, "reg_regims.a.weight: GroupLassoRegularizer needs [strength, group_type]"),
        ({"class": "GroupLassoRegularizer", "reg_regims": {"a.weight": [0.1, "Filter"]}}, "unknown group type 'Filter'; did you mean 'Filters'"),
        ({"class": "L1Regularizer", "reg_regims": {"a.weight": -1}}, "reg_regims.a.weight: must be a number >= 0"),
        ({"class": "L1Regularizer", "reg_regims": {}}, "reg_regims: must map parameter names"),
        ({"class": "L1Regularizer", "reg_regims": {"a": 1}, "threshold_criteria": "Min"}, "threshold_criteria: must be Max or Mean_Abs"),
    ],
)  # fmt: skip
def test_bad_entries_name_the_yaml_path(entry, needle):
    with pytest.raises(ConfigError) as info:
        parse_regularizer("r", entry, "regularizers.r")
    assert needle in str(info.value) and str(info.value).startswith("regularizers.r")


def test_setup_names_an_unknown_parameter_and_a_wrong_shape():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(3, 2))
    bad_name = parse_regularizer("r", {"class": "L1Regularizer", "reg_regims": {"0.weigth": 1e-4}}, "regularizers.r")
    with pytest.raises(ConfigError, match="'0.weigth' is not a parameter of Sequential; did you mean '0.weight'"):
        DistillerPenalty([bad_name]).setup(net, None)  # type: ignore[arg-type]
    bad_type = parse_regularizer(
        "r", {"class": "GroupLassoRegularizer", "reg_regims": {"1.weight": [1e-4, "3D"]}}, "regularizers.r"
    )
    with pytest.raises(ConfigError, match="group type '3D' needs a 4-D weight, not 2-D"):
        DistillerPenalty([bad_type]).setup(net, None)  # type: ignore[arg-type]


SCHEDULE = {
    "version": 1,
    "pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                      "desired_sparsity": 0.25, "weights": ["module.layer1.0.conv1.weight"]}},
    "regularizers": {"gl": {"class": "GroupLassoRegularizer", "threshold_criteria": "Mean_Abs",
                            "reg_regims": {"module.layer1.0.conv1.weight": [1e-3, "3D"],
                                           "module.layer2.0.conv1.weight": [1e-3, "Channels"]}}},
    "extensions": {"t": {"class": "StructureRemover", "thinning_func_str": "remove_filters"}},
    "policies": [{"regularizer": {"instance_name": "gl"}, "starting_epoch": 0, "ending_epoch": 2, "frequency": 1},
                 {"pruner": {"instance_name": "p"}, "epochs": [2]},
                 {"extension": {"instance_name": "t"}, "epochs": [2]}],
}  # fmt: skip


def test_a_distiller_schedule_with_regularizers_runs_them_at_their_epochs(tmp_path):
    torch.set_num_threads(1)
    recipe = load_recipe(SCHEDULE)
    assert recipe.num_epochs == 3
    train, test = make_loaders(batch_size=16, seed=0)
    options = TrainOptions(epochs=3, max_batches=2, eval_batches=1, lr=0.05)
    run(ModelSource("resnet20", num_classes=10, in_channels=1), [Phase("prune", options, recipe)],
        train_loader=train, val_loader=test, out_dir=tmp_path, progress=False, save=False, report=False)  # fmt: skip
    rows = read_history(tmp_path / "history.csv")
    assert [bool(r["penalty"]) for r in rows] == [True, True, False]  # epochs 0 and 1 only
    assert float(rows[0]["penalty"]) > 0


def test_threshold_criteria_zero_the_groups_under_the_strength():
    """Distiller's RegularizationPolicy.on_minibatch_end: groups whose mean |w| is at most the
    strength are zeroed (Mean_Abs), or whose max |w| is (Max); L1 zeroes elements."""
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[0.1, 0.1], [0.5, -0.5], [0.05, 0.9]]).reshape(3, 2, 1, 1))
    net = nn.Sequential(conv)
    for criteria, kept in (("Mean_Abs", [False, True, True]), ("Max", [False, True, True])):
        spec = parse_regularizer("r", {"class": "GroupLassoRegularizer", "threshold_criteria": criteria,
                                       "reg_regims": {"0.weight": [0.2, "3D"]}}, "regularizers.r")  # fmt: skip
        w = net[0].weight.detach().clone()
        reg = DistillerPenalty([spec])
        reg.setup(net, None)  # type: ignore[arg-type]
        reg.threshold_(net)
        assert [bool(net[0].weight[o].abs().sum() > 0) for o in range(3)] == kept
        with torch.no_grad():
            net[0].weight.copy_(w)
    spec = parse_regularizer("r", {"class": "GroupLassoRegularizer", "threshold_criteria": "Mean_Abs",
                                   "reg_regims": {"0.weight": [0.25, "Channels"]}}, "regularizers.r")  # fmt: skip
    reg = DistillerPenalty([spec])
    reg.setup(net, None)  # type: ignore[arg-type]
    reg.threshold_(net)  # input channel means: (0.1 + 0.5 + 0.05) / 3 <= 0.25, (0.1 + 0.5 + 0.9) / 3
    assert net[0].weight[:, 0].abs().sum() == 0 and net[0].weight[:, 1].abs().sum() > 0
    l1 = parse_regularizer("r", {"class": "L1Regularizer", "threshold_criteria": "Max",
                                 "reg_regims": {"0.weight": 0.3}}, "regularizers.r")  # fmt: skip
    reg = DistillerPenalty([l1])
    reg.setup(net, None)  # type: ignore[arg-type]
    reg.threshold_(net)
    assert (net[0].weight.abs() > 0.3).sum() == (net[0].weight != 0).sum()
