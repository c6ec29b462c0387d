"""channel_prune_: the known answer on a tiny linear net, residual and zoo nets stay valid."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from zoo import ZOO, channel_counts, randomize_bn

import prunekit
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.models import CifarResNet
from prunekit.reconstruction import channel_prune_


class TwoConv(nn.Module):
    """conv1 (3 -> 6) -> conv2 (6 -> 4), no non-linearity: conv1's channels 4 and 5 are exact
    linear combinations of channels 0..3, and conv2 reads them with small weights.

    Channel 4 = 2 * channel 0 and conv2 reads it with 0.1 x channel 0's weights, so its
    contribution is 0.2 x channel 0's (collinear: LASSO moves it onto channel 0's scale); channel
    5 = channel 1 - channel 2, read with small weights. The only prunable group is conv1:out /
    conv2:in (conv2's outputs are the model output). Exactly tied duplicates are not used: LASSO
    cannot prefer one of two identical columns.
    """

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.randn(6, 3, 3, 3, generator=g))
            self.conv2.weight.copy_(torch.randn(4, 6, 3, 3, generator=g))
            self.conv1.weight[4] = 2 * self.conv1.weight[0]
            self.conv1.weight[5] = self.conv1.weight[1] - self.conv1.weight[2]
            self.conv2.weight[:, 4] = 0.1 * self.conv2.weight[:, 0]
            self.conv2.weight[:, 5] *= 0.1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


def _data(shape=(16, 3, 8, 8), n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(n)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).sum() / b.pow(2).sum())


@pytest.mark.parametrize("method", ["lasso", "thinet"])
def test_redundant_channels_are_found_and_the_output_rebuilt(method):
    model = TwoConv().eval()
    ref = copy.deepcopy(model)
    x = _data(n=1, seed=5)[0]
    report = channel_prune_(model, x[:1], calibration=_data(), sparsity=0.34, method=method, num_samples=512)
    kept = report.kept["conv1"]["out"]
    assert kept == [0, 1, 2, 3]
    assert model.conv2.in_channels == 4
    with torch.no_grad():
        assert _rel(model(x), ref(x)) < 1e-8
    (row,) = report.reconstruction
    assert row.name == "conv2" and row.error_after < 1e-8 < row.error_before


def test_without_refit_the_same_cut_is_worse():
    x = _data(n=1, seed=5)[0]
    errs = {}
    for refit in (True, False):
        model = TwoConv().eval()
        ref = copy.deepcopy(model)
        channel_prune_(model, x[:1], calibration=_data(), sparsity=0.34, method="lasso", refit=refit)
        with torch.no_grad():
            errs[refit] = _rel(model(x), ref(x))
    assert errs[True] < 1e-8 < 1e-4 < errs[False]


def _tiny_resnet() -> nn.Module:
    """CIFAR ResNet-8 at width 8: residual streams read by several convs and a downsample."""
    torch.manual_seed(0)
    return CifarResNet(8, num_classes=10, in_channels=1, width=8).eval()


@pytest.mark.parametrize("method", ["lasso", "thinet", "l1"])
def test_residual_net_stays_valid_and_reaches_the_mac_target(method):
    model = _tiny_resnet()
    x = torch.randn(1, 1, 16, 16)
    data = [torch.randn(8, 1, 16, 16) for _ in range(2)]
    report = channel_prune_(model, x, calibration=data, target_macs=0.5, method=method, num_samples=256)
    assert report.macs_ratio <= 0.55
    assert model(torch.randn(3, 1, 16, 16)).shape == (3, 10)
    graph = prunekit.DependencyGraph(model, x)  # traces again: shapes are consistent
    assert graph.prunable_groups
    for block in (model.layer1[0], model.layer2[0]):
        assert block.conv2.in_channels == block.conv1.out_channels == block.bn1.num_features
    assert report.reconstruction and all(r.error_after <= r.error_before + 1e-9 for r in report.reconstruction)
    assert {r.selection for r in report.reconstruction} == {method}


ZOO_NETS = {name: build for name, build in ZOO}


@pytest.mark.parametrize("name", ["ResidualNet", "FlattenLinearNet", "DenseNet", "GroupedNet", "DepthwiseNet"])
def test_zoo_shapes_match_local_sparsity(name):
    """Same channel counts as prune_ at 0.5 (cells honoured; grouped consumers fall back to l1)."""
    net = randomize_bn(ZOO_NETS[name]())
    if net.INEXACT or 0.5 not in net.EXPECTED:
        pytest.skip("inexact groups are left whole by channel_prune_")
    x = net.example_inputs()
    data = [tuple(torch.randn(8, *t.shape[1:]) for t in x)]
    channel_prune_(net, x, calibration=data, sparsity=0.5, method="lasso", num_samples=128)
    for layer, counts in net.EXPECTED[0.5].items():
        assert channel_counts(net.get_submodule(layer)) == counts, layer
    net(*x)


def test_bad_arguments_raise_clear_errors():
    model = TwoConv().eval()
    x = _data(n=1)[0][:1]
    with pytest.raises(ConfigError, match="exactly one"):
        channel_prune_(model, x, calibration=_data(), sparsity=0.5, target_macs=0.5)
    with pytest.raises(UnknownNameError, match="criterion"):
        channel_prune_(model, x, calibration=_data(), sparsity=0.5, method="lassso")
    with pytest.raises(ConfigError, match="no batches"):
        channel_prune_(model, x, calibration=[], sparsity=0.5)
    with pytest.raises(ConfigError, match="num_samples"):
        channel_prune_(model, x, calibration=_data(), sparsity=0.5, num_samples=0)
    assert model.conv1.out_channels == 6
