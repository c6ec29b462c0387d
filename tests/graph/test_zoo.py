"""Every zoo net through the whole pipeline: graph, pruning, reports, equivalence and export."""

from __future__ import annotations

import copy
import io
import re
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from zoo import ZOO, SliceNet, build, channel_counts

import prunekit
from prunekit.errors import EquivalenceError

ZOO_IDS = [name for name, _ in ZOO]
MAKERS = dict(ZOO)
#: (name, sparsity) for every hand-derived expectation in the zoo.
COUNT_CASES = [
    pytest.param(name, sparsity, id=f"{name}-{sparsity}") for name, make in ZOO for sparsity in make().EXPECTED
]
ONNX_NETS = ["ResidualNet", "DenseNet", "ConcatChunkNet", "ShuffleNet", "SENet", "FlattenLinearNet"]


@pytest.fixture(params=ZOO_IDS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


# ------------------------------------------------------------------------------------ helpers
def outputs(model: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    out = model(*inputs)
    return out if isinstance(out, tuple) else (out,)


def prune_net(name: str, sparsity: float = 0.5, **options):
    """Builds zoo net ``name`` and prunes it in place; returns (original copy, pruned, report, inputs)."""
    model = MAKERS[name]()
    inputs = model.example_inputs()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, inputs, sparsity=sparsity, **options)
    return original, model, report, inputs


def layers(model: nn.Module) -> dict[str, tuple[int, int]]:
    """{module name: (in, out)} for every module with channel counts."""
    found = {}
    for module_name, module in model.named_modules():
        counts = channel_counts(module)
        if counts is not None:
            found[module_name] = counts
    return found


def assert_attributes_match_tensors(module_name: str, module: nn.Module) -> None:
    """The layer's own attributes (in_channels, groups...) agree with its tensors' shapes."""
    where = f"{module_name} ({type(module).__name__})"
    if isinstance(module, nn.modules.conv._ConvNd):
        cin, cout, groups = module.in_channels, module.out_channels, module.groups
        assert cin % groups == 0 and cout % groups == 0, where
        expected = (cin, cout // groups) if module.transposed else (cout, cin // groups)
        assert tuple(module.weight.shape[:2]) == expected, where
        if module.bias is not None:
            assert tuple(module.bias.shape) == (cout,), where
    elif isinstance(module, nn.Linear):
        assert tuple(module.weight.shape) == (module.out_features, module.in_features), where
        if module.bias is not None:
            assert tuple(module.bias.shape) == (module.out_features,), where
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        for tensor in (module.weight, module.bias, module.running_mean, module.running_var):
            assert tuple(tensor.shape) == (module.num_features,), where
    elif isinstance(module, nn.GroupNorm):
        assert module.num_channels % module.num_groups == 0, where
        assert tuple(module.weight.shape) == (module.num_channels,), where
    elif isinstance(module, nn.LayerNorm):
        assert tuple(module.weight.shape) == tuple(module.normalized_shape), where
    elif isinstance(module, nn.PReLU):
        assert module.weight.numel() == module.num_parameters, where


def assert_state_equal(before: dict[str, Tensor], after: dict[str, Tensor]) -> None:
    assert before.keys() == after.keys()
    for key, tensor in before.items():
        assert after[key].shape == tensor.shape, key
        assert torch.equal(after[key], tensor), key


def assert_outputs_close(actual, expected, *, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(torch.as_tensor(a), e, rtol=rtol, atol=atol)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -------------------------------------------------------------------------------------- graph
def test_graph_is_consistent(name: str) -> None:
    model = MAKERS[name]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graph = prunekit.DependencyGraph(model, model.example_inputs())
    assert_state_equal(before, model.state_dict())  # building a graph changes nothing
    assert not model.training
    modules = dict(model.named_modules())
    state = model.state_dict()
    assert graph.groups, "no groups at all"
    assert len({g.id for g in graph.groups}) == len(graph.groups), "group ids are not unique"
    for g in graph.groups:
        assert g.size >= 1 and g.members, g.id
        covered = set()
        for m in g.members:
            assert m.module in modules and m.module != "", (g.id, m.module)
            assert m.role in {"out", "in", "param"}, (g.id, m.module, m.role)
            for tensor_name, dim in m.tensors:
                assert tensor_name in state, (g.id, m.module, tensor_name)
                assert 0 <= dim < state[tensor_name].dim(), (g.id, tensor_name, dim)
            positions, channels = np.asarray(m.positions), np.asarray(m.channels)
            assert positions.shape == channels.shape and positions.ndim == 1, (g.id, m.module)
            assert len(positions) > 0, (g.id, m.module, "member without positions")
            assert len(np.unique(positions)) == len(positions), (g.id, m.module, "repeated positions")
            assert positions.min() >= 0 and channels.min() >= 0 and channels.max() < g.size, (g.id, m.module)
            covered.update(channels.tolist())
        assert covered == set(range(g.size)), f"group {g.id}: channels no member holds"
        if g.size == 1:
            assert not g.prunable, f"group {g.id} has one channel but is prunable"
        if not g.exact:
            assert g.reason, f"group {g.id} is inexact without a reason"
        if g.prunable and g.exact:
            assert g.reason == "", (g.id, g.reason)


def test_group_of_finds_the_groups_that_shrink(name: str) -> None:
    model = MAKERS[name]()
    graph = prunekit.DependencyGraph(model, model.example_inputs())
    before = layers(model)
    weighted = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    for module_name, (_, out) in model.EXPECTED[0.5].items():
        if out < before[module_name][1] and isinstance(model.get_submodule(module_name), weighted):
            group = graph.group_of(module_name, role="out")
            assert group is not None and group.prunable, module_name
            assert any(m.module == module_name and m.role == "out" for m in group.members), module_name


def test_graph_str_mentions_every_group(name: str) -> None:
    model = MAKERS[name]()
    graph = prunekit.DependencyGraph(model, model.example_inputs())
    text = str(graph)
    for g in graph.groups:
        assert re.search(rf"\b{g.id}\b", text), f"group {g.id} missing from str(graph)"
        assert any(m.module in text for m in g.members), f"no member of group {g.id} in str(graph)"


def test_couplings_and_exactness(name: str) -> None:
    model = MAKERS[name]()
    graph = prunekit.DependencyGraph(model, model.example_inputs())
    for module_name, ops in model.COUPLINGS.items():
        group = graph.group_of(module_name)
        assert group is not None, module_name
        assert ops <= set(group.couplings), (module_name, group.couplings)
    for module_name, (layer_type, norm_module) in model.INEXACT.items():
        group = graph.group_of(module_name)
        assert group is not None and group.prunable, module_name
        assert not group.exact, module_name
        assert layer_type in group.reason and norm_module in group.reason, group.reason
    if not model.INEXACT:
        assert all(g.exact for g in graph.groups), [(g.id, g.reason) for g in graph.groups if not g.exact]


def test_single_channel_group_is_not_prunable() -> None:
    model = MAKERS["SingleChannelNet"]()
    group = prunekit.DependencyGraph(model, model.example_inputs()).group_of("squeeze")
    assert group is not None and group.size == 1 and not group.prunable


# ------------------------------------------------------------------------------------ pruning
@pytest.mark.parametrize(("name", "sparsity"), COUNT_CASES)
def test_prune_gives_expected_counts(name: str, sparsity: float) -> None:
    original, model, _, _ = prune_net(name, sparsity)
    expected = {**layers(original), **model.EXPECTED[sparsity]}
    assert layers(model) == expected
    for module_name, module in model.named_modules():
        assert_attributes_match_tensors(module_name, module)


@pytest.mark.parametrize(("name", "sparsity"), COUNT_CASES)
def test_report_sizes(name: str, sparsity: float) -> None:
    original, model, report, _ = prune_net(name, sparsity)
    for value in (report.params_before, report.params_after, report.macs_before, report.macs_after):
        assert isinstance(value, int) and value > 0
    assert report.params_before == num_params(original)
    assert report.params_after == num_params(model)
    assert report.params_after < report.params_before
    assert report.macs_after < report.macs_before
    assert str(report)


def test_report_kept_indices(name: str) -> None:
    original, model, report, _ = prune_net(name)
    before, after = layers(original), layers(model)
    shrunk = {n for n in after if after[n] != before[n]}
    assert set(report.kept) == shrunk
    for module_name, roles in report.kept.items():
        assert roles and set(roles) <= {"in", "out"}, (module_name, roles)
        for role, kept in roles.items():
            dim = 0 if role == "in" else 1
            kept = list(kept)
            assert kept == sorted(set(kept)), (module_name, role, "not sorted or repeated")
            assert all(0 <= int(i) < before[module_name][dim] for i in kept), (module_name, role)
            assert len(kept) == after[module_name][dim] < before[module_name][dim], (module_name, role)


def test_surgery_keeps_the_reported_slices(name: str) -> None:
    """Plain convs, Linears and BatchNorms hold exactly the original rows/columns named in kept."""
    original, model, report, _ = prune_net(name)
    for module_name, roles in report.kept.items():
        old, new = original.get_submodule(module_name), model.get_submodule(module_name)
        out_idx = torch.as_tensor(list(roles.get("out", roles.get("in", []))), dtype=torch.long)
        if isinstance(old, nn.modules.batchnorm._BatchNorm):
            for attr in ("weight", "bias", "running_mean", "running_var"):
                assert torch.equal(getattr(new, attr), getattr(old, attr)[out_idx]), (module_name, attr)
        elif isinstance(old, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and getattr(old, "groups", 1) == 1:
            out_idx = torch.as_tensor(list(roles.get("out", range(old.weight.shape[0]))), dtype=torch.long)
            in_idx = torch.as_tensor(list(roles.get("in", range(old.weight.shape[1]))), dtype=torch.long)
            assert torch.equal(new.weight, old.weight[out_idx][:, in_idx]), module_name
            if old.bias is not None:
                assert torch.equal(new.bias, old.bias[out_idx]), module_name


def test_forward_backward_after_prune(name: str) -> None:
    original, model, _, inputs = prune_net(name)
    assert [o.shape for o in outputs(model, inputs)] == [o.shape for o in outputs(original, inputs)]
    model.train()
    loss = sum(o.square().mean() for o in outputs(model, inputs))
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, param_name
        assert torch.isfinite(param.grad).all(), param_name


@pytest.mark.parametrize(("name", "sparsity"), COUNT_CASES)
def test_exact_only_pruning_is_equivalent(name: str, sparsity: float) -> None:
    original, model, report, inputs = prune_net(name, sparsity, exact_only=True)
    result = prunekit.check_equivalence(original, model, inputs, report)
    assert result.ok, f"max error {result.max_error} at scale {result.scale}"
    prunekit.assert_equivalent(original, model, inputs, report)
    if not model.INEXACT:  # nothing inexact to skip: the same result as exact_only=False
        assert layers(model) == {**layers(original), **model.EXPECTED[sparsity]}
    before, after = layers(original), layers(model)
    for g in prunekit.DependencyGraph(original, inputs).groups:
        for m in (m for m in g.members if not g.exact and m.module in before):
            dims = {"in": [0], "out": [1], "param": [0, 1]}[m.role]
            assert [after[m.module][d] for d in dims] == [before[m.module][d] for d in dims], m.module


def test_check_equivalence_catches_a_wrong_weight() -> None:
    original, model, report, inputs = prune_net("ResidualNet")
    with torch.no_grad():
        model.head.weight[0].add_(1.0)
    assert not prunekit.check_equivalence(original, model, inputs, report).ok
    with pytest.raises(EquivalenceError):
        prunekit.assert_equivalent(original, model, inputs, report)


def test_prune_copy_leaves_the_input_untouched(name: str) -> None:
    model = MAKERS[name]()
    inputs = model.example_inputs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, report = prunekit.prune(model, inputs, sparsity=0.5)
    assert pruned is not model
    assert_state_equal(before, model.state_dict())
    assert not model.training and not pruned.training
    assert layers(pruned) == {**layers(model), **model.EXPECTED[0.5]}
    if not model.INEXACT:
        assert prunekit.check_equivalence(model, pruned, inputs, report).ok


def test_ignore_keeps_the_whole_group() -> None:
    original, model, report, _ = prune_net("ResidualNet", ignore=["layer1.0.conv1"])
    after = layers(model)
    assert after["layer1.0.conv1"] == (4, 16) and after["layer1.0.conv2"] == (16, 8)
    assert after["head"] == (8, 4)


def test_slice_pins_the_leading_channels() -> None:
    model = build(SliceNet)
    inputs = model.example_inputs()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, inputs, sparsity=0.5, exact_only=True)
    kept_stem = report.kept.get("stem", {}).get("out", range(6))
    assert list(kept_stem)[:2] == [0, 1]
    assert model.side.in_channels == 2
    assert prunekit.check_equivalence(original, model, inputs, report).ok


# ------------------------------------------------------------------------- saving and export
def test_save_load_round_trip(name: str) -> None:
    _, model, _, inputs = prune_net(name)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert layers(loaded) == layers(model)
    assert_outputs_close(outputs(loaded, inputs), outputs(model, inputs), rtol=0, atol=0)


def test_torchscript_after_prune(name: str) -> None:
    original, model, _, inputs = prune_net(name)
    try:
        torch.jit.script(original)
    except Exception as error:  # noqa: BLE001 - only nets that script before pruning are checked
        pytest.skip(f"original does not script: {error}")
    scripted = torch.jit.script(model)
    assert_outputs_close(outputs(scripted, inputs), outputs(model, inputs))


def test_torch_export_after_prune(name: str) -> None:
    original, model, _, inputs = prune_net(name)
    try:
        torch.export.export(original, inputs)
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"original does not export: {error}")
    exported = torch.export.export(model, inputs).module()
    assert_outputs_close(outputs(exported, inputs), outputs(model, inputs))


@pytest.mark.parametrize("name", ONNX_NETS)
def test_onnx_after_prune(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    _, model, _, inputs = prune_net(name)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, buffer, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue())
    feeds = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs)}
    got = [torch.from_numpy(o) for o in session.run(None, feeds)]
    with torch.no_grad():
        assert_outputs_close(got, outputs(model, inputs), atol=1e-4, rtol=1e-4)
