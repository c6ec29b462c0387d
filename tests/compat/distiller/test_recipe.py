"""Distiller schedules on the CIFAR ResNet-20 (Distiller's layer names): filters, channels, rows,
Leader, AGP with thinning, element-wise pruners, LR schedulers, replay and resume."""

from __future__ import annotations

import copy
import logging
import textwrap

import numpy as np
import pytest
import torch

import prunekit
from prunekit.config import load_recipe
from prunekit.errors import ConfigError
from prunekit.models import get_model
from prunekit.compat.distiller.recipe import DistillerRecipe
from prunekit.schedules.functions import distiller_agp_sparsity
from prunekit.schedules.recipe import LRSchedulerSpec
from prunekit.schedules.schedule_recipe import decisions_from_state
from prunekit.surgery.selection import removal_count

LAYER1_CONV1 = "[module.layer1.0.conv1.weight, module.layer1.1.conv1.weight, module.layer1.2.conv1.weight]"
STAGE2_SUM = (
    "[module.layer2.0.conv2.weight, module.layer2.1.conv2.weight, module.layer2.2.conv2.weight,"
    " module.layer2.0.downsample.0.weight]"
)

# Modelled on Distiller's examples/pruning_filters_for_efficient_convnets/resnet56_cifar_filter_rank_v2.yaml
FILTERS = f"""
version: 1
pruners:
  filter_pruner_60:
    class: 'L1RankedStructureParameterPruner'
    group_type: Filters
    desired_sparsity: 0.6
    weights: {LAYER1_CONV1}
  filter_pruner_50:
    class: 'L1RankedStructureParameterPruner'
    group_type: Filters
    desired_sparsity: 0.5
    group_dependency: Leader
    weights: {STAGE2_SUM}
extensions:
  net_thinner:
      class: 'FilterRemover'
      thinning_func_str: remove_filters
      arch: 'resnet20_cifar'
      dataset: 'cifar10'
lr_schedulers:
   exp_finetuning_lr:
     class: ExponentialLR
     gamma: 0.95
policies:
  - pruner:
      instance_name: filter_pruner_60
    epochs: [0]
  - pruner:
      instance_name: filter_pruner_50
    epochs: [0]
  - extension:
      instance_name: net_thinner
    epochs: [0]
  - lr_scheduler:
      instance_name: exp_finetuning_lr
    starting_epoch: 1
    ending_epoch: 5
    frequency: 1
"""


def _resnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model("resnet20", num_classes=10, in_channels=1).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _batches(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(4, 1, 28, 28, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(n)]


def test_filter_pruning_with_leader_and_thinning(x):
    model = _resnet()
    original = copy.deepcopy(model)
    recipe = load_recipe(FILTERS)
    assert isinstance(recipe, DistillerRecipe) and recipe.num_epochs == 1 and not recipe.needs_data
    event = recipe.on_epoch_begin(model, x, 0)
    assert event.rebuild_optimizer and [d.kind for d in event.decisions] == ["mask", "physical"]
    keep = 16 - removal_count(16, 0.6)
    assert [model.layer1[i].conv1.out_channels for i in range(3)] == [keep] * 3 == [7] * 3
    assert [model.layer1[i].conv2.in_channels for i in range(3)] == [7] * 3
    stage2 = [model.layer2[i].conv2.out_channels for i in range(3)] + [model.layer2[0].downsample[0].out_channels]
    assert stage2 == [16] * 4 and model.layer3[0].conv1.in_channels == 16
    assert model.conv1.out_channels == 16 and model.layer3[0].conv1.out_channels == 64  # not listed
    prunekit.assert_equivalent(original, model, x, event.reports[0])
    assert recipe.lr_schedulers == (LRSchedulerSpec("ExponentialLR", {"gamma": 0.95}, (1, 2, 3, 4)),)
    assert not recipe.finalize(model, x).changed


def _l1_filters(weight: torch.Tensor) -> np.ndarray:
    return weight.detach().abs().flatten(1).sum(1).numpy()


def test_leader_shares_the_first_layers_choice_across_uncoupled_layers(x):
    model = _resnet()
    leader_scores = _l1_filters(model.layer1[0].conv1.weight)
    text = FILTERS.replace("desired_sparsity: 0.6", "desired_sparsity: 0.5\n    group_dependency: Leader")
    event = load_recipe(text).on_epoch_begin(model, x, 0)
    kept = event.decisions[-1].module_keep
    expected = sorted(np.argsort(leader_scores, kind="stable")[8:].tolist())
    assert [kept[f"layer1.{i}.conv1"]["out"] for i in range(3)] == [expected] * 3


def test_leader_with_unequal_widths_is_an_error(x):
    text = FILTERS.replace(STAGE2_SUM, "[module.layer2.0.conv1.weight, module.layer1.0.conv1.weight]")
    with pytest.raises(ConfigError, match="pruners.filter_pruner_50.group_dependency: Leader shares layer2.0.conv1"):
        load_recipe(text).on_epoch_begin(_resnet(), x, 0)


def _one_pruner(body: str, policy: str = "epochs: [0]", extra: str = "") -> str:
    return textwrap.dedent(
        """\
        version: 1
        pruners:
          p:
        {body}
        {extra}
        policies:
          - pruner:
              instance_name: p
            {policy}
        """
    ).format(body=textwrap.indent(textwrap.dedent(body), "    "), policy=policy, extra=extra)


def test_channel_pruning_ranks_the_consumers_input_slices(x):
    model = _resnet()
    original = copy.deepcopy(model)
    columns = model.layer2[1].conv2.weight.detach().abs().sum(dim=(0, 2, 3)).numpy()
    text = _one_pruner(
        """\
        class: L1RankedStructureParameterPruner
        group_type: Channels
        desired_sparsity: 0.5
        weights: [module.layer2.1.conv2.weight]
        """
    )
    recipe = load_recipe(text)
    recipe.on_epoch_begin(model, x, 0)
    event = recipe.finalize(model, x)  # no thinning extension: removed at the end
    assert model.layer2[1].conv1.out_channels == 16 and model.layer2[1].conv2.in_channels == 16
    assert event.decisions[0].module_keep["layer2.1.conv2"]["in"] == sorted(np.argsort(columns)[16:].tolist())
    assert "no thinning extension" in event.messages[0]
    prunekit.assert_equivalent(original, model, x, event.reports[0])


def test_rows_prunes_a_linear_layers_input_features_and_extends_to_the_group(x, caplog):
    model = _resnet()
    text = _one_pruner(
        """\
        class: L1RankedStructureParameterPruner
        group_type: Rows
        desired_sparsity: 0.25
        weights: [module.fc.weight]
        """
    )
    with caplog.at_level(logging.INFO, logger="prunekit.compat.distiller.recipe"):
        event = load_recipe(text).on_epoch_begin(model, x, 0)
    extended = event.messages[0]
    assert (
        "fc (listed) and layer3.1.conv1, layer3.2.conv1 (not listed) are summed" in extended
        and "the choice is extended to the whole group" in extended
    )
    assert "extended to the whole group" in caplog.text
    load_recipe(text).finalize(model, x)  # a fresh recipe has nothing masked: a no-op
    recipe = load_recipe(text)
    recipe.replay(model, event.decisions[0])
    recipe.finalize(model, x)
    assert model.fc.in_features == 48 and model.layer3[2].conv2.out_channels == 48
    with pytest.raises(ConfigError, match=r"weights\[0\]: group_type Rows is for Linear layers"):
        load_recipe(text.replace("fc.weight", "layer1.0.conv1.weight")).on_epoch_begin(_resnet(), x, 0)


def test_strict_names_the_missing_layers_and_the_add(x):
    body = """\
        class: L1RankedStructureParameterPruner
        group_type: Filters
        desired_sparsity: 0.5
        strict: true
        weights: [module.layer1.0.conv2.weight, module.layer1.1.conv2.weight]
        """
    with pytest.raises(ConfigError) as info:
        load_recipe(_one_pruner(body)).on_epoch_begin(_resnet(), x, 0)
    assert str(info.value) == (
        "pruners.p.weights: layer1.0.conv2, layer1.1.conv2 (listed) and conv1, layer1.2.conv2 (not listed) are "
        "summed at layer1.0 (add), layer1.1 (add), layer1.2 (add): list them together with group_dependency: "
        "Leader (or drop strict: true to extend the choice to the whole group)"
    )


def test_agp_over_epochs_with_thinning_extension(x):
    model = _resnet()
    text = (
        _one_pruner(
            """\
        class: L1RankedStructureParameterPruner_AGP
        group_type: Filters
        initial_sparsity: 0.1
        final_sparsity: 0.5
        weights: [module.layer3.0.conv1.weight, module.layer3.1.conv1.weight]
        """,
            policy="starting_epoch: 0\n    ending_epoch: 4\n    frequency: 1",
            extra=textwrap.dedent(
                """\
            extensions:
              thinner: {class: StructureRemover, thinning_func_str: contract_model}
            """
            ),
        )
        + "  - extension: {instance_name: thinner}\n    epochs: [1, 3]\n"
    )
    recipe = load_recipe(text)
    assert recipe.num_epochs == 4
    widths, zero_rows = [], []
    for epoch in range(5):
        event = recipe.on_epoch_begin(model, x, epoch)
        assert event.rebuild_optimizer == (epoch in (1, 3))
        w = model.layer3[0].conv1.weight
        widths.append(w.shape[0])
        zero_rows.append(int((w.flatten(1).abs().sum(1) == 0).sum()))
    s = [distiller_agp_sparsity(e, initial=0.1, final=0.5, start=0, end=4) for e in range(4)]
    keep = [64 - removal_count(64, v) for v in s]
    assert widths == [64, keep[1], keep[1], keep[3], keep[3]] == [64, 40, 40, 32, 32]
    assert zero_rows == [64 - keep[0], 0, keep[1] - keep[2], 0, 0]
    assert model.layer3[1].conv1.out_channels == 32 and model.layer3[2].conv1.out_channels == 64


def test_elementwise_pruners_mask_weights_and_keep_them_through_training(x):
    text = textwrap.dedent(
        """\
        version: 1
        pruners:
          fine:
            class: AutomatedGradualPruner
            initial_sparsity: 0.2
            final_sparsity: 0.6
            weights: [module.layer1.0.conv1.weight, module.fc.weight]
          levels:
            class: SparsityLevelParameterPruner
            levels: {module.layer2.0.conv1.weight: 0.5}
          magnitude:
            class: MagnitudeParameterPruner
            thresholds: {module.layer3.0.conv1.weight: 0.05}
        policies:
          - pruner: {instance_name: fine}
            starting_epoch: 0
            ending_epoch: 3
          - pruner: {instance_name: levels}
            epochs: [0]
          - pruner: {instance_name: magnitude}
            epochs: [1]
        """
    )
    model = _resnet().train()
    recipe = load_recipe(text)
    params = model.layer1[0].conv1.weight
    for epoch in range(3):
        event = recipe.on_epoch_begin(model, x, epoch)
        assert not event.rebuild_optimizer and event.decisions[-1].kind == "elementwise"
        assert "do not shrink dense compute" in event.messages[0]
        s = distiller_agp_sparsity(epoch, initial=0.2, final=0.6, start=0, end=3)
        assert float((params == 0).float().mean()) == pytest.approx(int(s * params.numel()) / params.numel())
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(2):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
            recipe.after_optimizer_step(model)
        assert float((params == 0).float().mean()) >= s - 0.01
    assert float((model.layer2[0].conv1.weight == 0).float().mean()) == pytest.approx(0.5, abs=1e-3)
    assert float(model.layer3[0].conv1.weight.detach().abs().min()) == 0.0
    assert model.layer1[0].conv1.out_channels == 16  # unstructured: shapes kept
    assert "element-wise sparsity" in recipe.finalize(model, x).messages[0]


@pytest.mark.parametrize("with_thinning", [True, False])
def test_replay_and_resume_reproduce_the_model(x, with_thinning):
    text = (
        FILTERS if with_thinning else FILTERS.replace("epochs: [0]\n  - lr_scheduler", "epochs: [5]\n  - lr_scheduler")
    )
    model = _resnet()
    recipe = load_recipe(text)
    events = [recipe.on_epoch_begin(model, x, 0), recipe.finalize(model, x)]
    fresh, other = _resnet(seed=3), load_recipe(text)
    for d in decisions_from_state(recipe.state_dict()):
        other.replay(fresh, d)
    other.load_state_dict(recipe.state_dict())
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), model(x))
    assert sum(len(e.decisions) for e in events) == len(other.decisions)
    with pytest.raises(ConfigError, match="decisions stored but 0 replayed"):
        load_recipe(text).load_state_dict({**recipe.state_dict(), "decisions": recipe.state_dict()["decisions"][:1]})


def test_activation_ranked_pruner_needs_calibration(x):
    text = _one_pruner(
        """\
        class: ActivationAPoZRankedFilterPruner_AGP
        initial_sparsity: 0.1
        final_sparsity: 0.3
        weights: [module.layer2.0.conv1.weight]
        """,
        policy="starting_epoch: 0\n    ending_epoch: 3",
    )
    recipe = load_recipe(text)
    assert recipe.needs_data
    with pytest.raises(ConfigError, match="pruners.p: criterion 'apoz' scores channels from calibration data"):
        recipe.on_epoch_begin(_resnet(), x, 0)
    model = _resnet()
    for epoch in range(3):
        recipe.on_epoch_begin(model, x, epoch, calibration=_batches())
    recipe.finalize(model, x)
    assert model.layer2[0].conv1.out_channels == 32 - removal_count(32, 0.3)


@pytest.mark.parametrize("calibration", [True, False])
def test_fm_reconstruction_refits_or_says_it_did_not(x, calibration, caplog):
    text = _one_pruner(
        """\
        class: FMReconstructionChannelPruner
        desired_sparsity: 0.5
        weights: [module.layer1.0.conv2.weight]
        """
    )
    model = _resnet()
    recipe = load_recipe(text)
    assert recipe.needs_data
    recipe.on_epoch_begin(model, x, 0, calibration=_batches() if calibration else None)
    with caplog.at_level(logging.WARNING, logger="prunekit.compat.distiller.recipe"):
        messages = recipe.finalize(model, x).messages
    assert model.layer1[0].conv2.in_channels == 8
    if calibration:
        assert messages[1].startswith("FMReconstruction: refit layer1.0.conv2 (relative error")
    else:
        assert "weights were NOT reconstructed" in messages[1] and "NOT reconstructed" in caplog.text
