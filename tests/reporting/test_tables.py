"""The per-layer table: figures from comparing the two models, requested sparsity from the reports."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.reporting import compare_layers, markdown_table, requested_sparsity


def test_rows_add_up_to_the_model_totals(pruned):
    rows = compare_layers(pruned.before, pruned.after, pruned.x, prune_reports=pruned.reports)
    assert sum(r.params_before for r in rows) == prunekit.count_params(pruned.before)
    assert sum(r.params_after for r in rows) == prunekit.count_params(pruned.after)
    # MACs per sample: counted on one input, whatever the batch of the example
    assert sum(r.macs_after for r in rows) == prunekit.count_macs(pruned.after, (pruned.x[:1],))
    conv = next(r for r in rows if r.name == "layer1.0.conv1")
    module = pruned.after.layer1[0].conv1
    assert (conv.in_after, conv.out_after, conv.out_before) == (module.in_channels, module.out_channels, 16)
    assert conv.sparsity_realised == pytest.approx(1 - module.out_channels / 16)
    fc = next(r for r in rows if r.name == "fc")
    assert fc.out_after == fc.out_before == 10 and fc.sparsity_realised == 0 and fc.sparsity_requested is None


def test_requested_sparsity_composes_steps_and_overrides(pruned):
    requested = requested_sparsity(pruned.reports)
    assert requested["layer1.0.conv1"] == pytest.approx(1 - 0.5 * 0.75)
    assert requested["layer1.0.bn1"] == pytest.approx(1 - 0.5 * 0.75)
    assert requested["layer2.0.conv1"] == pytest.approx(1 - 0.7 * 0.75)
    assert "fc" not in requested  # the output layer is never cut


def test_requested_sparsity_of_a_coupled_group_is_its_smallest_request():
    """The engine gives a group the smallest request of its layers: the conv alone asking 0.5
    does not raise its group (it shares outputs with its BN) above the default."""
    torch.manual_seed(0)
    model, x = prunekit.models.get_model("resnet20", num_classes=10, in_channels=1).eval(), torch.randn(1, 1, 28, 28)
    report = prunekit.prune_(model, x, sparsity=0.25, overrides={"layer1.0.conv1": 0.5})
    assert requested_sparsity([report])["layer1.0.conv1"] == pytest.approx(0.25)
    assert model.layer1[0].conv1.out_channels == 12


def test_global_scope_has_no_per_layer_request():
    torch.manual_seed(0)
    model, x = prunekit.models.get_model("resnet20", num_classes=10, in_channels=1).eval(), torch.randn(1, 1, 28, 28)
    report = prunekit.prune_(model, x, sparsity=0.3, scope="global")
    requested = requested_sparsity([report])
    assert requested and all(v is None for v in requested.values())


def test_different_architectures_are_a_clear_error(pruned):
    other = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(ConfigError, match="'0'"):
        compare_layers(pruned.before, other, pruned.x)


def test_markdown_table():
    text = markdown_table(("name", "n", "ratio"), [("a|b", 1234, 0.5), ("c", None, None)])
    lines = text.splitlines()
    assert lines[0] == "| name | n | ratio |" and lines[1] == "|---|---:|---:|"
    assert lines[2] == "| a\\|b | 1,234 | 0.5 |" and lines[3] == "| c | - | - |"
