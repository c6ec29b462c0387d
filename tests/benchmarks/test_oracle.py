"""The tool-independent oracle agrees with prunekit's own records and catches wrong cuts."""

import copy

import pytest
import torch
from _oracle import check_against_zeroed, recover_kept
from torch import nn
from zoo import ZOO, randomize_bn

import prunekit

SINGLE_INPUT = [(name, factory) for name, factory in ZOO if len(factory().INPUT_SHAPES) == 1]


@pytest.mark.parametrize("name,factory", SINGLE_INPUT, ids=[n for n, _ in SINGLE_INPUT])
def test_oracle_reads_prunekit_cuts_off_the_weights(name, factory):
    torch.manual_seed(0)
    model = randomize_bn(factory())
    (x,) = model.example_inputs()
    pruned = copy.deepcopy(model)
    report = prunekit.prune_(pruned, x, sparsity=0.5)
    kept = recover_kept(model, pruned)
    if kept.unknown:
        # Only layer types the oracle does not model may stay unknown, and it says which.
        assert "ConvTranspose" in kept.unknown, kept.unknown
        return
    for layer, keep in kept.kept_in.items():
        assert keep == report.kept[layer]["in"], layer
    for layer, keep in kept.kept_out.items():
        assert keep == report.kept[layer]["out"], layer
    res = check_against_zeroed(model, pruned, [x], rtol=1e-4)
    assert res.equivalent == bool(prunekit.check_equivalence(model, pruned, x, report, tol=1e-4)), res
    assert res.equivalent or res.cross_channel, res


def _two_convs() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.Flatten(), nn.LazyLinear(4)).eval()


def _cut(model: nn.Sequential, keep_out: list[int], keep_in: list[int]) -> nn.Sequential:
    """Hand surgery: conv0 keeps ``keep_out``, conv2 reads ``keep_in`` (a bug when they differ)."""
    cut = copy.deepcopy(model)
    c0, c2 = cut[0], cut[2]
    c0.weight = nn.Parameter(c0.weight[keep_out].clone())
    c0.bias = nn.Parameter(c0.bias[keep_out].clone())
    c0.out_channels = len(keep_out)
    c2.weight = nn.Parameter(c2.weight[:, keep_in].clone())
    c2.in_channels = len(keep_in)
    return cut


def test_a_correct_hand_cut_is_equivalent_and_a_wrong_one_is_not():
    model = _two_convs()
    x = torch.randn(2, 3, 9, 9)
    model(x)  # materialise the lazy Linear
    good = _cut(model, [0, 2, 5, 7], [0, 2, 5, 7])
    assert recover_kept(model, good).kept_in == {"2": [0, 2, 5, 7]}
    assert check_against_zeroed(model, good, [x]).equivalent is True
    wrong = _cut(model, [0, 2, 5, 7], [1, 2, 5, 7])  # the consumer reads the wrong channel
    res = check_against_zeroed(model, wrong, [x])
    assert res.equivalent is False and res.max_error > 1e-3


def test_rescaled_weights_are_unknown_not_guessed():
    model = _two_convs()
    x = torch.randn(2, 3, 9, 9)
    model(x)
    cut = _cut(model, [0, 2, 5, 7], [0, 2, 5, 7])
    with torch.no_grad():
        cut[2].weight.mul_(1.5)
    res = check_against_zeroed(model, cut, [x])
    assert res.equivalent is None and "no exact match" in res.reason


def test_layernorm_over_pruned_channels_is_reported():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3)).eval()
    x = torch.randn(4, 6)
    pruned = copy.deepcopy(model)
    prunekit.prune_(pruned, x, sparsity=0.5)
    res = check_against_zeroed(model, pruned, [x])
    assert res.cross_channel == ["1"]
    assert res.equivalent is False and "LayerNorm" in res.reason


@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_convs_are_read_in_their_own_weight_layout(groups):
    # ConvTranspose2d stores (in, out / groups, k, k): the kept input channels are weight rows.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 6, 3, groups=groups)).eval()
    x = torch.randn(2, 3, 9, 9)

    def cut(keep_out: list[int], keep_in: list[int]) -> nn.Sequential:
        pruned = copy.deepcopy(model)
        c0, ct = pruned[0], pruned[2]
        c0.weight = nn.Parameter(c0.weight[keep_out].clone())
        c0.bias = nn.Parameter(c0.bias[keep_out].clone())
        c0.out_channels = len(keep_out)
        ct.weight = nn.Parameter(ct.weight[keep_in].clone())
        ct.in_channels = len(keep_in)
        return pruned

    good = cut([0, 2, 5, 7], [0, 2, 5, 7])  # two channels kept in each of the two groups
    assert recover_kept(model, good).kept_in == {"2": [0, 2, 5, 7]}
    assert check_against_zeroed(model, good, [x]).equivalent is True
    res = check_against_zeroed(model, cut([0, 2, 5, 7], [1, 2, 5, 7]), [x])
    assert res.equivalent is False and res.max_error > 1e-3
