"""Distiller schedules on the CIFAR ResNet-20 (Distiller's layer names): filters, channels, rows,
Leader, AGP with thinning, element-wise pruners, LR schedulers, replay and resume."""

from __future__ import annotations

import copy
import logging
import textwrap

import numpy as np
import pytest
import torch
import yaml

import prunekit
from prunekit.compat.distiller.recipe import DistillerRecipe
from prunekit.errors import ConfigError
from prunekit.models import get_model
from prunekit.recipes import load_recipe
from prunekit.recipes.schedule import decisions_from_state
from prunekit.schedules.functions import distiller_agp_sparsity
from prunekit.schedules.recipe import LRSchedulerSpec
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


def test_rows_masks_a_linear_layers_input_columns_and_keeps_them_as_masks(x, caplog):
    """Issue 14 (3): Distiller keeps Rows masks as masks; cutting them would cut the stage-3
    residual stream (every layer3 conv2 and the downsample)."""
    model = _resnet()
    columns = model.fc.weight.detach().abs().sum(0).numpy()
    text = (
        _one_pruner(
            """\
        class: L1RankedStructureParameterPruner
        group_type: Rows
        desired_sparsity: 0.25
        weights: [module.fc.weight]
        """,
            extra="extensions:\n  thinner: {class: FilterRemover, thinning_func_str: remove_filters}",
        )
        + "  - extension: {instance_name: thinner}\n    epochs: [0]\n"
    )
    recipe = load_recipe(text)
    with caplog.at_level(logging.INFO, logger="prunekit.compat.distiller.recipe"):
        event = recipe.on_epoch_begin(model, x, 0)
    line = event.messages[0]
    assert "group_type Rows masks 16 of 64 input columns of fc.weight (0.2500); kept as masks" in line
    assert "layer3.0.downsample.0, layer3.0.conv2, layer3.1.conv2, layer3.2.conv2 feeding it" in line
    assert "kept as masks" in caplog.text
    recipe.finalize(model, x)
    assert model.fc.in_features == 64 and model.layer3[2].conv2.out_channels == 64  # nothing removed
    zero = np.flatnonzero(model.fc.weight.detach().abs().sum(0).numpy() == 0).tolist()
    assert zero == sorted(np.argsort(columns, kind="stable")[:16].tolist())
    fresh, other = _resnet(seed=4), load_recipe(text)
    for d in decisions_from_state(recipe.state_dict()):
        other.replay(fresh, d)
    assert torch.equal(fresh.fc.weight == 0, model.fc.weight == 0)
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
    # issue 14 (2): after a thinning, a sparsity is a fraction of the current (thinned) width
    w1 = 64 - removal_count(64, s[1])
    w3 = w1 - removal_count(w1, s[3])
    assert widths == [64, w1, w1, w3, w3] == [64, 40, 40, 20, 20]
    assert zero_rows == [removal_count(64, s[0]), 0, removal_count(w1, s[2]), 0, 0]
    assert model.layer3[1].conv1.out_channels == 20 and model.layer3[2].conv1.out_channels == 64


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


@pytest.mark.parametrize("ranking", ["first", "group"])
def test_leader_ranks_by_the_first_listed_weight_alone(x, ranking):
    """Issue 14 (4): Distiller ranks a Leader group by its first weight; "group" sums every member."""
    model = _resnet()
    convs = [model.layer2[0].conv2, model.layer2[1].conv2, model.layer2[2].conv2, model.layer2[0].downsample[0]]
    scores = _l1_filters(convs[0].weight) if ranking == "first" else sum(_l1_filters(c.weight) for c in convs)
    recipe = DistillerRecipe.from_mapping(yaml.safe_load(FILTERS), leader_ranking=ranking)
    event = recipe.on_epoch_begin(model, x, 0)
    kept = event.decisions[-1].module_keep["layer2.0.conv2"]["out"]
    assert kept == sorted(np.argsort(scores, kind="stable")[16:].tolist())
    said = any("Leader group ranked by layer2.0.conv2.weight alone" in m for m in event.messages)
    assert said == (ranking == "first")


@pytest.mark.parametrize(
    "body, needle",
    [
        (
            "strict: true\nweights: [module.layer1.0.conv2.weight]",
            r"pruners.p.weights: layer1.0.conv2 \(listed\) and .* are summed",
        ),
        (
            "group_dependency: Leader\nweights: [module.layer2.0.conv1.weight, module.layer1.0.conv1.weight]",
            "pruners.p.group_dependency: Leader shares layer2.0.conv1's choice",
        ),
    ],
)
def test_every_pruner_is_checked_before_the_first_epoch(x, body, needle):
    """Issue 14 (10): a bad pruner whose policy starts at epoch 30 fails at epoch 0."""
    text = _one_pruner(
        f"class: L1RankedStructureParameterPruner\ngroup_type: Filters\ndesired_sparsity: 0.5\n{body}\n",
        policy="epochs: [30]",
    )
    model = _resnet()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ConfigError, match=needle):
        load_recipe(text).on_epoch_begin(model, x, 0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_fold_batchnorm_ranks_filters_with_the_batchnorm_folded_in(x):
    """Issue 14 (6): ``args: {fold_batchnorm: true}`` ranks W * gamma / sqrt(var + eps)."""
    model = _resnet()
    bn = model.layer1[0].bn1
    with torch.no_grad():
        bn.running_var.copy_(torch.linspace(0.01, 100.0, 16))
        bn.weight.copy_(torch.linspace(2.0, 0.5, 16))
    weight = model.layer1[0].conv1.weight.detach().clone()
    folded = _l1_filters(weight) * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    body = "class: L1RankedStructureParameterPruner\ngroup_type: Filters\ndesired_sparsity: 0.5\n"
    body += "weights: [module.layer1.0.conv1.weight]\n"
    plain = load_recipe(_one_pruner(body)).on_epoch_begin(copy.deepcopy(model), x, 0)
    text = _one_pruner(body, policy="epochs: [0]\n    pruner: {instance_name: p, args: {fold_batchnorm: true}}")
    text = text.replace("  - pruner:\n      instance_name: p\n    epochs", "  - epochs")
    event = load_recipe(text).on_epoch_begin(model, x, 0)
    kept = event.decisions[-1].module_keep["layer1.0.conv1"]["out"]
    assert kept == sorted(np.argsort(folded, kind="stable")[8:].tolist())
    assert kept != plain.decisions[-1].module_keep["layer1.0.conv1"]["out"]
    assert torch.equal(model.layer1[0].conv1.weight[kept], weight[kept])  # the weights are not folded


def test_checkpointed_masks_are_bit_packed_and_only_the_changed_ones(x, tmp_path):
    """Issue 14 (12): element-wise masks are stored at one bit per weight, each parameter's once."""
    text = (
        _one_pruner(
            """\
        class: AutomatedGradualPruner
        initial_sparsity: 0.2
        final_sparsity: 0.6
        weights: [module.layer3.1.conv1.weight, module.layer3.1.conv2.weight]
        """,
            policy="starting_epoch: 0\n    ending_epoch: 4",
            extra="  other:\n    class: SparsityLevelParameterPruner\n    levels: {module.layer3.2.conv1.weight: 0.5}",
        )
        + "  - pruner: {instance_name: other}\n    epochs: [0]\n"
    )
    model, recipe = _resnet(), load_recipe(text)
    for epoch in range(4):
        recipe.on_epoch_begin(model, x, epoch)
    state = recipe.state_dict()
    # each mask once: the level pruner's in the first step, the AGP masks in the last
    assert [sorted(d["weight_masks"]) for d in state["decisions"]] == [
        ["layer3.2.conv1.weight"],
        [],
        [],
        ["layer3.1.conv1.weight", "layer3.1.conv2.weight"],
    ]
    torch.save(state, tmp_path / "s.pt")
    masked = 3 * 36864  # elements of all masks stored
    assert (tmp_path / "s.pt").stat().st_size < masked / 8 + 20_000  # float32 would be masked * 4 bytes
    fresh, other = _resnet(seed=5), load_recipe(text)
    for d in decisions_from_state(torch.load(tmp_path / "s.pt", weights_only=True)):
        other.replay(fresh, d)
    for name, mask in recipe.weight_masks.items():
        assert torch.equal(other.weight_masks[name], mask), name
        assert torch.equal(fresh.get_parameter(name) == 0, model.get_parameter(name) == 0), name


def test_shorten_scales_every_policy_into_n_epochs():
    """The schedule shortener: order kept, AGP keeps two steps, LR keeps its total decay."""
    from prunekit.compat.distiller.shorten import shorten

    text = textwrap.dedent(
        """\
        version: 1
        pruners:
          agp:
            class: L1RankedStructureParameterPruner_AGP
            group_type: Filters
            initial_sparsity: 0.1
            final_sparsity: 0.5
            weights: [module.layer1.0.conv1.weight]
        extensions:
          thin: {class: FilterRemover, thinning_func_str: remove_filters}
        lr_schedulers:
          exp: {class: ExponentialLR, gamma: 0.95}
          steps: {class: MultiStepLR, milestones: [60, 120], gamma: 0.1}
        policies:
          - pruner: {instance_name: agp}
            starting_epoch: 0
            ending_epoch: 30
            frequency: 2
          - extension: {instance_name: thin}
            epochs: [32, 200]
          - lr_scheduler: {instance_name: exp}
            starting_epoch: 10
            ending_epoch: 300
          - lr_scheduler: {instance_name: steps}
            starting_epoch: 0
            ending_epoch: 300
        """
    )
    recipe = load_recipe(text)
    assert recipe.run_epochs == 300
    short = DistillerRecipe(shorten(recipe.schedule, 10))
    agp, thin, exp, steps = short.schedule.policies
    assert (agp.starting_epoch, agp.ending_epoch, agp.frequency, agp.epochs) == (0, 2, 1, (0, 1))
    assert thin.epochs == (1, 6) and exp.epochs == tuple(range(0, 10)) and short.run_epochs == 10
    assert short.lr_schedulers[0].kwargs["gamma"] == pytest.approx(0.95**29)  # 290 steps -> 10
    assert short.lr_schedulers[1].kwargs["milestones"] == [2, 4]
    assert shorten(recipe.schedule, 300) is recipe.schedule


ORDERED = """
version: 1
pruners:
  stage3:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    group_dependency: Leader
    weights: [module.layer3.0.conv2.weight, module.layer3.0.downsample.0.weight,
              module.layer3.1.conv2.weight, module.layer3.2.conv2.weight]
  rows:
    class: L1RankedStructureParameterPruner
    group_type: Rows
    desired_sparsity: 0.25
    weights: module.fc.weight
  late:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight]
extensions:
  thin: {class: FilterRemover, thinning_func_str: remove_filters}
policies:
  - pruner: {instance_name: stage3}
    epochs: [0]
  - pruner: {instance_name: rows}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [1]
  - pruner: {instance_name: late}
    epochs: [1]
"""


def test_policies_on_one_epoch_run_in_declaration_order_and_masks_follow_a_thinning(x):
    """Distiller's rule: the thinning declared before ``late`` runs first, so ``late``'s masks
    wait for the final thinning; fc's Rows mask is sliced when stage 3 is thinned."""
    model, recipe = _resnet(), load_recipe(ORDERED)
    recipe.on_epoch_begin(model, x, 0)
    zero_columns = int((model.fc.weight.abs().sum(0) == 0).sum())
    event = recipe.on_epoch_begin(model, x, 1)
    assert [d.kind for d in event.decisions] == ["physical", "mask"]
    assert model.fc.in_features == 32 and model.layer1[0].conv1.out_channels == 16
    assert recipe.weight_masks["fc.weight"].shape == (10, 32)
    assert int((model.fc.weight.abs().sum(0) == 0).sum()) <= zero_columns
    recipe.finalize(model, x)
    assert model.layer1[0].conv1.out_channels == 8
    swapped = ORDERED.replace(
        "  - extension: {instance_name: thin}\n    epochs: [1]\n  - pruner: {instance_name: late}\n    epochs: [1]\n",
        "  - pruner: {instance_name: late}\n    epochs: [1]\n  - extension: {instance_name: thin}\n    epochs: [1]\n",
    )
    model = _resnet()
    recipe = load_recipe(swapped)
    recipe.on_epoch_begin(model, x, 0)
    assert [d.kind for d in recipe.on_epoch_begin(model, x, 1).decisions] == ["mask", "physical"]
    assert model.layer1[0].conv1.out_channels == 8


def test_a_second_prune_after_thinning_cuts_its_fraction_of_the_thinned_width(x):
    """Issue 14 (2), the VGG-19 filter-rank pattern: 0.1 at epoch 0, thin, 0.1 again at epoch 2,
    thin: 64 -> 58 -> 53 filters, as Distiller (not 58 twice)."""
    text = _one_pruner(
        """\
        class: L1RankedStructureParameterPruner
        group_type: Filters
        desired_sparsity: 0.1
        weights: [module.layer3.1.conv1.weight]
        """,
        policy="epochs: [0, 2]",
        extra="extensions:\n  thin: {class: FilterRemover, thinning_func_str: remove_filters}",
    )
    text += "  - extension: {instance_name: thin}\n    epochs: [0, 2]\n"
    model, recipe = _resnet(), load_recipe(text)
    widths = []
    for epoch in range(3):
        event = recipe.on_epoch_begin(model, x, epoch)
        widths.append(model.layer3[1].conv1.out_channels)
    assert widths == [58, 58, 53]
    assert "removed 5 masked channels" in event.messages[-1]


class _SharedReLU(torch.nn.Module):
    """One ReLU module called at two widths (as torchvision's Bottleneck reuses its ``relu``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 8, 3)
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def test_apoz_pruner_on_a_model_that_reuses_one_relu_at_two_widths(x):
    """The ResNet-50 APoZ file crashed with 'size of tensor a (64) must match ... (256)'."""
    text = _one_pruner(
        """\
        class: ActivationAPoZRankedFilterPruner
        desired_sparsity: 0.5
        weights: [module.conv1.weight]
        """
    )
    model, recipe = _SharedReLU(), load_recipe(text)
    recipe.on_epoch_begin(model, x, 0, calibration=_batches())
    recipe.finalize(model, x)
    assert model.conv1.out_channels == 2 and model.conv2.in_channels == 2
