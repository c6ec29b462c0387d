"""Folding batch norms for inference: the folded model computes the original's eval outputs, only
sole-reader pairs fold, a removed branch's constant folds, and a failure leaves the model as it was."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

import prunekit
from prunekit.errors import ConfigError, EquivalenceError, TraceError
from prunekit.fold import batchnorm_pairs, fold_batchnorm, fold_constants
from prunekit.models import get_model
from prunekit.surgery.standins import ConstantOutput, is_standin
from tests.latency import fakes


def _randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine parameters far from the identity, so a wrong fold shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(n, generator=g))
                m.bias.data.copy_(torch.randn(n, generator=g))
    return model


def _norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "regnet_y_400mf"])
def test_torchvision_models_fold_every_norm_and_compute_the_same(name):
    torch.manual_seed(0)
    model = _randomise_norms(getattr(torchvision.models, name)(weights=None).eval())
    x = torch.randn(2, 3, 64, 64)
    before = copy.deepcopy(model.state_dict())
    folded = fold_batchnorm(model, x)
    assert _norms(folded) == 0 and len(batchnorm_pairs(model, x)) == _norms(model)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
        x2 = torch.randn(3, 3, 48, 48)  # not just the inputs it was checked on
        torch.testing.assert_close(folded(x2), model(x2), atol=1e-4, rtol=1e-4)
    # the user's model is untouched: same state, same mode, same layers
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not folded.training and _norms(model) > 0


class _Shared(nn.Module):
    """Patterns that must not fold: a conv output read twice, a norm called twice, a conv
    subclass with its own forward, a norm without running statistics."""

    class _Scaled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    def __init__(self) -> None:
        super().__init__()
        self.read_twice, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c1, self.c2, self.bn_twice = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
        self.custom, self.bn_c = self._Scaled(4, 4, 1), nn.BatchNorm2d(4)
        self.plain, self.bn_stats = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, track_running_stats=False)
        self.ok, self.bn_ok = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.read_twice(x)
        y = self.bn_a(y) + y
        y = self.bn_twice(self.c1(y)) + self.bn_twice(self.c2(y))
        y = self.bn_c(self.custom(y))
        y = self.bn_stats(self.plain(y))
        return self.bn_ok(self.ok(y))


def test_only_sole_reader_pairs_fold():
    model = _randomise_norms(_Shared().eval())
    x = torch.randn(2, 3, 8, 8)
    assert batchnorm_pairs(model, x) == [("ok", "bn_ok")]
    folded = fold_batchnorm(model, x)
    assert isinstance(folded.bn_ok, nn.Identity) and isinstance(folded.bn_a, nn.BatchNorm2d)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def _removed_branches(tmp_path, monkeypatch) -> tuple[nn.Module, torch.Tensor, list[str]]:
    """ResNet-20 (random norms) with whole blocks removed, its input, and its constants' names."""
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    fakes.register()  # a simulated latency backend, so the allocation removes whole blocks
    torch.manual_seed(0)
    model = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=1).eval())
    x = torch.randn(2, 1, 28, 28)
    options = dict(scope="global", latency_allocation=True, remove_branches=True, latency_backend="fake")
    prunekit.prune_(model, x, target_macs=0.4, **options)
    constants = [n for n, m in model.named_modules() if isinstance(m, ConstantOutput)]
    assert constants, "the cut removed no branch"
    return model, x, constants


def test_a_removed_branch_folds_into_its_constant(tmp_path, monkeypatch):
    model, x, constants = _removed_branches(tmp_path, monkeypatch)
    folded = fold_batchnorm(model, x)
    assert _norms(folded) == 0
    for name in constants:
        block = folded.get_submodule(name.rpartition(".")[0])
        assert isinstance(block.conv2, ConstantOutput) and block.conv2.bias is not None
        assert isinstance(block.bn2, nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_inplace_folds_the_model_itself_and_leaves_it_in_eval_mode():
    model = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=1)).train()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    assert fold_batchnorm(model, x, inplace=True) is model
    assert _norms(model) == 0 and not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_a_wrong_fold_is_caught_and_the_model_put_back(monkeypatch):
    model = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=1).eval())
    x = torch.randn(2, 1, 28, 28)
    layers = dict(model.named_modules())

    def wrong(layer, norm):  # forgets the norm: the check forward must refuse it
        return copy.deepcopy(layer)

    monkeypatch.setattr("prunekit.fold._folded", wrong)
    with pytest.raises(EquivalenceError, match="differs"):
        fold_batchnorm(model, x, inplace=True)
    assert all(layers[n] is m for n, m in model.named_modules())  # every layer back in its place

    def broken(layer, norm):
        raise RuntimeError("boom")

    monkeypatch.setattr("prunekit.fold._folded", broken)
    with pytest.raises(prunekit.errors.SurgeryError, match="boom") as info:
        fold_batchnorm(model, x, inplace=True)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert all(layers[n] is m for n, m in model.named_modules())


def test_bad_arguments_are_prunekit_errors():
    model, x = get_model("resnet20", num_classes=10, in_channels=1), torch.randn(2, 1, 28, 28)
    with pytest.raises(ConfigError, match="tracer"):
        fold_batchnorm(model, x, tracer="export")

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: fx cannot trace it
                return self.bn(self.conv(x))
            return self.conv(x)

    with pytest.raises(TraceError):
        fold_batchnorm(Branchy(), x[:, :1])
    # what runs on the inputs can still be recorded and folded
    folded = fold_batchnorm(Branchy().eval(), x.abs(), tracer="record")
    assert isinstance(folded.bn, nn.Identity)


@settings(max_examples=25, deadline=None)
@given(
    dims=st.sampled_from([1, 2, 3]),
    cin=st.integers(1, 6),
    cout=st.integers(1, 6),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    bias=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_any_conv_geometry_folds_exactly(dims, cin, cout, kernel, stride, bias, affine, seed):
    conv_type = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    norm_type = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dims - 1]
    torch.manual_seed(seed)
    model = nn.Sequential(
        conv_type(cin, cout, kernel, stride=stride, bias=bias), norm_type(cout, affine=affine), nn.ReLU()
    )
    model = _randomise_norms(model.eval(), seed)
    x = torch.randn(2, cin, *([7] * dims))
    folded = fold_batchnorm(model, x)
    assert isinstance(folded[1], nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)


def _called(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_module"]


@pytest.mark.parametrize("fold_norms_first", [False, True])
def test_removed_branches_fold_into_their_additions(tmp_path, monkeypatch, fold_norms_first):
    """Each removed block computes act(x + c): no stand-in and no norm of a constant runs."""
    model, x, constants = _removed_branches(tmp_path, monkeypatch)
    source = fold_batchnorm(model, x) if fold_norms_first else model
    deployed = fold_constants(source, x)
    assert isinstance(deployed, torch.fx.GraphModule) and not deployed.training
    called = _called(deployed)
    assert not any(is_standin(deployed.get_submodule(n)) for n in called)
    for name in constants:  # the norm that read the constant is evaluated at build time
        assert name not in called and name.replace("conv2", "bn2") not in called
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(deployed(x[:1]), model(x[:1]), atol=1e-5, rtol=1e-5)  # any batch
    assert sum(isinstance(m, ConstantOutput) for m in model.modules()) == len(constants)  # unchanged


class _Constants(nn.Module):
    """A constant added after a norm (folds), one concatenated and one added to a pooled tensor
    (do not: the sum would not have the other tensor's shape, or nothing adds)."""

    def __init__(self) -> None:
        super().__init__()
        geometry = dict(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), replaces="Conv2d")
        self.added = ConstantOutput(3, torch.randn(3), **geometry)
        self.bn = _randomise_norms(nn.BatchNorm2d(3)).eval()
        self.act = nn.ReLU(inplace=True)
        self.joined = ConstantOutput(3, torch.randn(3), **geometry)
        self.pooled = ConstantOutput(3, None, **geometry)

    def forward(self, x):
        y = x * 2  # a new tensor: the in-place sum must not write the input
        y += self.act(self.bn(self.added(x)))
        z = self.pooled(x) + x.mean((2, 3), keepdim=True)
        return torch.cat([y, self.joined(x)], 1), z


def test_only_constants_added_to_a_full_tensor_fold():
    model, x = _Constants().eval(), torch.randn(2, 3, 5, 5)
    bias = model.added.bias.detach().clone()
    deployed = fold_constants(model, x)
    called = _called(deployed)
    assert "added" not in called and "bn" not in called and "act" not in called
    assert "joined" in called and "pooled" in called
    with torch.no_grad():
        for got, want in zip(deployed(x), model(x)):
            torch.testing.assert_close(got, want)
    assert torch.equal(model.added.bias, bias)  # the in-place activation ran on a copy


def test_fold_constants_errors(tmp_path, monkeypatch):
    model, x, _ = _removed_branches(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match="positionally"):
        fold_constants(model, {"x": x})
    from prunekit import fold

    right = fold._through_per_channel

    def wrong(gm, node, value):  # the constant evaluated one off: the check must refuse it
        end, value = right(gm, node, value)
        return end, value + 1

    monkeypatch.setattr(fold, "_through_per_channel", wrong)
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(EquivalenceError, match="constant was folded"):
        fold_constants(model, x)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    def broken(gm):
        raise RuntimeError("boom")

    monkeypatch.setattr(fold, "_inline_constants", broken)
    with pytest.raises(prunekit.errors.SurgeryError, match="boom") as info:
        fold_constants(model, x)
    assert isinstance(info.value.__cause__, RuntimeError)
