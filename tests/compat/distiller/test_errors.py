"""Every bad Distiller schedule is a ConfigError that names its YAML path."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from prunekit.errors import ConfigError
from prunekit.models import get_model
from prunekit.recipes import load_recipe

BASE = {
    "version": 1,
    "pruners": {
        "filter_pruner": {
            "class": "L1RankedStructureParameterPruner",
            "group_type": "Filters",
            "desired_sparsity": 0.5,
            "weights": ["module.layer1.0.conv1.weight"],
        },
        "agp": {
            "class": "L2RankedStructureParameterPruner_AGP",
            "group_type": "Filters",
            "initial_sparsity": 0.1,
            "final_sparsity": 0.4,
            "weights": ["module.layer2.0.conv1.weight"],
        },
    },
    "extensions": {"thinner": {"class": "FilterRemover", "thinning_func_str": "remove_filters"}},
    "lr_schedulers": {"lr": {"class": "StepLR", "step_size": 2}},
    "policies": [
        {"pruner": {"instance_name": "filter_pruner"}, "epochs": [0]},
        {"pruner": {"instance_name": "agp"}, "starting_epoch": 0, "ending_epoch": 4, "frequency": 1},
        {"extension": {"instance_name": "thinner"}, "epochs": [4]},
        {"lr_scheduler": {"instance_name": "lr"}, "starting_epoch": 0, "ending_epoch": 10},
    ],
}


def _with(path: str, value: object) -> dict:
    """BASE with ``value`` set at a dotted path (``policies.1.ending_epoch``); ``...`` deletes."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: object = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]  # type: ignore[index]
    key = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]  # type: ignore[attr-defined]
    else:
        node[key] = value  # type: ignore[index]
    return data


CASES = [
    ("quantizers", {}, "quantizers: quantization is not supported by prunekit"),
    (
        "regularizers",
        {"r": {"class": "GroupLassoRegularizr", "reg_regims": {"conv1.weight": [1e-4, "3D"]}}},
        "regularizers.r.class: unknown regularizer class 'GroupLassoRegularizr'; did you mean 'GroupLassoRegularizer'",
    ),
    ("schedulers", {}, "schedulers: unknown top-level key; did you mean 'lr_schedulers'?"),
    (
        "pruners.filter_pruner.class",
        "L1RankedStructureParameterPrunr",
        "pruners.filter_pruner.class: unknown pruner class 'L1RankedStructureParameterPrunr'; "
        "did you mean 'L1RankedStructureParameterPruner'?",
    ),
    ("pruners.filter_pruner.class", "PostTrainLinearQuantizer", "is a quantizer: quantization is not supported"),
    (  # issue 14 (9): no misleading "did you mean" for a real Distiller class prunekit lacks
        "pruners.filter_pruner.class",
        "SplicingPruner",
        "pruners.filter_pruner.class: SplicingPruner (dynamic network surgery (masks that can grow back)) is a "
        "Distiller pruner that prunekit does not support; supported: L1RankedStructureParameterPruner,",
    ),
    ("pruners.filter_pruner.class", "SensitivityPruner", "is a Distiller pruner that prunekit does not support"),
    (
        "pruners.filter_pruner.class",
        "RandomLevelStructureParameterPruner",
        "is a Distiller pruner that prunekit does not support",
    ),
    (
        "pruners.filter_pruner.desired_sparsty",
        0.5,
        "pruners.filter_pruner.desired_sparsty: unknown field; did you mean",
    ),
    (
        "pruners.filter_pruner.desired_sparsity",
        1.2,
        "pruners.filter_pruner.desired_sparsity: must be in [0, 1), but got 1.2",
    ),
    ("pruners.filter_pruner.desired_sparsity", ..., "pruners.filter_pruner.desired_sparsity: is required"),
    ("pruners.filter_pruner.group_type", "Kernels", "pruners.filter_pruner.group_type: must be one of Filters"),
    ("pruners.filter_pruner.group_dependency", "Follower", "group_dependency: must be 'Leader'"),
    ("pruners.filter_pruner.weights", [], "pruners.filter_pruner.weights: must be a non-empty list"),
    ("pruners.agp.final_sparsity", 0.05, "pruners.agp.final_sparsity: must be >= initial_sparsity (0.1)"),
    (
        "extensions.thinner.class",
        "FilterRemove",
        "extensions.thinner.class: unknown extension class 'FilterRemove'; did you mean 'FilterRemover'?",
    ),
    (
        "extensions.thinner.thinning_func_str",
        "remove_channels",
        "FilterRemover takes remove_filters, but got 'remove_channels'",
    ),
    (
        "lr_schedulers.lr.class",
        "StepLr",
        "lr_schedulers.lr.class: unknown torch.optim.lr_scheduler class 'StepLr'; did you mean 'StepLR'?",
    ),
    (
        "lr_schedulers.lr.step_sise",
        3,
        "lr_schedulers.lr.step_sise: not an argument of StepLR; did you mean 'step_size'?",
    ),
    ("lr_schedulers.lr.step_size", ..., "lr_schedulers.lr.step_size: is required by StepLR"),
    ("policies.1.ending_epoch", 0, "policies[1].ending_epoch: must be greater than starting_epoch (0), but got 0"),
    ("policies.1.frequency", 0, "policies[1].frequency: must be an int >= 1, but got 0"),
    (
        "policies.1.ending_epoch",
        1,
        "policies[1].ending_epoch: an AGP pruner needs ending_epoch - starting_epoch - 1 >= frequency",
    ),
    ("policies.0.epochs", [0, "1"], "policies[0].epochs[1]: must be an int >= 0, but got '1'"),
    ("policies.0.epochs", 3, "policies[0].epochs: must be a non-empty list of ints"),
    ("policies.0.starting_epoch", 2, "policies[0].starting_epoch: give either epochs or starting_epoch"),
    (
        "policies.0.pruner.instance_name",
        "filter_pruner2",
        "policies[0].pruner.instance_name: 'filter_pruner2' is not defined under pruners; did you mean 'filter_pruner'?",
    ),
    (
        "policies.2.extension.instance_name",
        "net_thinner",
        "policies[2].extension.instance_name: 'net_thinner' is not defined under extensions",
    ),
    (
        "policies.0.pruner.args",
        {"mini_batch_pruning_frequncy": 1},
        "policies[0].pruner.args.mini_batch_pruning_frequncy: unknown argument; did you mean 'mini_batch_pruning_frequency'?",
    ),
    ("policies.0.epoch", [1], "policies[0].epoch: unknown field; did you mean 'epochs'?"),
    ("policies.1.epochs", [0, 1], "policies[1].starting_epoch: give either epochs"),
    ("version", 2, "version: Distiller schedules have version 1, but got 2"),
]


@pytest.mark.parametrize("path, value, needle", CASES, ids=[c[0] + ":" + repr(c[1])[:20] for c in CASES])
def test_bad_schedule_names_the_yaml_path(path, value, needle):
    with pytest.raises(ConfigError) as info:
        load_recipe(_with(path, value))
    assert needle in str(info.value)


def test_agp_pruner_timed_by_epochs_is_an_error():
    data = _with("policies.1", {"pruner": {"instance_name": "agp"}, "epochs": [0, 1]})
    with pytest.raises(ConfigError, match=r"policies\[1\]: AGP pruner 'agp' needs starting_epoch and ending_epoch"):
        load_recipe(data)


def test_regularizer_policy_names_a_defined_regularizer():
    data = _with("policies.0", {"regularizer": {"instance_name": "r"}, "epochs": [0]})
    with pytest.raises(ConfigError, match=r"policies\[0\].regularizer.instance_name: 'r' is not defined under"):
        load_recipe(data)


def test_duplicate_key_in_yaml_text():
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "    desired_sparsity: 0.5\n", "    desired_sparsity: 0.5\n    desired_sparsity: 0.6\n", 1
    )
    with pytest.raises(ConfigError, match=r"pruners.filter_pruner.desired_sparsity: duplicate key \(line \d+\)"):
        load_recipe(text)


@pytest.mark.parametrize(
    "weight, needle",
    [
        (
            "module.layer1.0.cnv1.weight",
            "'layer1.0.cnv1.weight' is not a parameter of CifarResNet; did you mean 'layer1.0.conv1.weight'?",
        ),
        (
            "module.layer1.0.bn1.weight",
            "ranks the weight matrix of a conv or linear layer, but got 'layer1.0.bn1.weight'",
        ),
    ],
)
def test_names_are_checked_against_the_model(weight, needle):
    model = get_model("resnet20", num_classes=10, in_channels=1)
    recipe = load_recipe(_with("pruners.filter_pruner.weights", [weight]))
    with pytest.raises(ConfigError) as info:
        recipe.on_epoch_begin(model, torch.randn(1, 1, 28, 28), 0)
    assert str(info.value).startswith("pruners.filter_pruner.weights[0]: ") and needle in str(info.value)


def test_mode_is_not_for_distiller_files():
    with pytest.raises(ConfigError, match="mode: Distiller schedules say themselves when to thin"):
        load_recipe(BASE, mode="masked")


def test_elementwise_names_are_checked_too():
    data = {
        "pruners": {"lv": {"class": "SparsityLevelParameterPruner", "levels": {"module.fc.wieght": 0.5}}},
        "policies": [{"pruner": {"instance_name": "lv"}, "epochs": [0]}],
    }
    model = get_model("resnet20", num_classes=10, in_channels=1)
    with pytest.raises(ConfigError, match=r"pruners.lv.levels.fc.wieght: 'fc.wieght' is not a parameter .*'fc.weight'"):
        load_recipe(data).on_epoch_begin(model, torch.randn(1, 1, 28, 28), 0)


def test_blocks_is_reported_before_its_kwargs():
    data = _with("pruners.agp.group_type", "Blocks")
    data["pruners"]["agp"]["kwargs"] = {"block_shape": [1, 8, 1, 1]}
    with pytest.raises(ConfigError, match=r"^pruners.agp.group_type: Blocks \(block sparsity .*\) is not supported"):
        load_recipe(data)


def test_a_quantization_stats_file_is_told_it_is_not_a_schedule():
    text = "conv1:\n  inputs:\n    0: {min: -1.0, max: 1.0}\n  output: {min: 0.0, max: 2.0}\n"
    with pytest.raises(ConfigError, match="^schedule: this is a Distiller quantization-statistics file"):
        load_recipe(text)


def test_weights_as_a_bare_string_and_dataparallel_inside_features():
    data = _with("pruners.filter_pruner.weights", "module.layer1.0.conv1.weight")
    assert load_recipe(data).schedule.pruners["filter_pruner"].weights == ("layer1.0.conv1.weight",)
    data = _with("pruners.filter_pruner.weights", ["features.module.3.weight", "module.features.module.0.weight"])
    assert load_recipe(data).schedule.pruners["filter_pruner"].weights == ("features.3.weight", "features.0.weight")
