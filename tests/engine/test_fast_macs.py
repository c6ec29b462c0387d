"""Shape-only MAC counting and analysis against ``torch.utils.flop_counter`` and the real run.

The engine counts MACs with :class:`prunekit.engine.macs.ShapeOnlyMode`, which skips the
arithmetic of convolutions and matrix products. These tests pin that it changes nothing but the
time: the totals and per-layer counts equal ``FlopCounterMode``'s (before and after pruning, on
every zoo net), and the dependency analysis run under it finds the same groups as a real run.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from zoo import ZOO

import prunekit
from prunekit.engine import analyse, fast_macs_per_module
from prunekit.engine.macs import ShapeOnlyMode, shape_of_skipped
from prunekit.metrics import macs_per_module
from tests.engine.signature import group_signature

MAKERS = dict(ZOO)
ZOO_IDS = [name for name, _ in ZOO]


@pytest.mark.parametrize("name", ZOO_IDS)
def test_macs_match_flop_counter_before_and_after_pruning(name: str) -> None:
    model = MAKERS[name]()
    inputs = model.example_inputs()
    assert fast_macs_per_module(model, inputs) == macs_per_module(model, inputs)
    _, (total, per_module) = analyse(model, inputs)
    real_total, real_per = macs_per_module(model, inputs)
    assert total == real_total
    # the analysis calls only leaf layers as modules: their counts are the real ones
    assert all(real_per[k] == v for k, v in per_module.items())
    report = prunekit.prune_(model, inputs, sparsity=0.5)
    assert fast_macs_per_module(model, inputs) == macs_per_module(model, inputs)
    assert report.macs_before == real_total and report.macs_after == macs_per_module(model, inputs)[0]


@pytest.mark.parametrize("name", ZOO_IDS)
def test_shape_only_analysis_finds_the_real_groups(name: str) -> None:
    model = MAKERS[name]()
    inputs = model.example_inputs()
    real = prunekit.DependencyGraph(model, inputs)
    fast, _ = analyse(model, inputs)
    assert group_signature(fast) == group_signature(real)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "googlenet", "vit_b_16"])
def test_macs_match_flop_counter_on_torchvision(name: str) -> None:
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    size = 224 if name == "vit_b_16" else 96
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = (torch.randn(1, 3, size, size),)
    assert fast_macs_per_module(model, x) == macs_per_module(model, x)
    real = prunekit.DependencyGraph(model, x)
    fast, (total, _) = analyse(model, x)
    assert total == macs_per_module(model, x)[0]
    assert group_signature(fast) == group_signature(real)


def test_skipped_ops_check_shapes_like_the_kernels() -> None:
    x, w = torch.zeros(1, 4, 8, 8), torch.zeros(6, 3, 3, 3)
    args = (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    with pytest.raises(RuntimeError, match="4 channels"):
        shape_of_skipped(torch.ops.aten.convolution.default, args)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        shape_of_skipped(torch.ops.aten.mm.default, (torch.zeros(2, 3), torch.zeros(4, 5)))
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3), torch.nn.Conv2d(5, 2, 1))
    with pytest.raises(RuntimeError):
        fast_macs_per_module(model, (x,))
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3), torch.nn.BatchNorm2d(5)).eval()
    with pytest.raises(RuntimeError, match="6|5"):
        fast_macs_per_module(model, (x,))


def test_skipping_matches_computing_every_conv_variant() -> None:
    """Output shapes of the skipped kernels equal the real ones (strides, padding, dilation,
    groups, transposed with output padding, 1d/3d)."""
    cases = [
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=2, groups=2),
        torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        torch.nn.Conv1d(4, 4, 5, padding="same"),
        torch.nn.Conv3d(4, 2, (1, 3, 3), stride=(1, 2, 2)),
        torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
        torch.nn.Linear(4, 5),  # addmm
        torch.nn.Linear(4, 3, bias=False),  # mm
    ]
    for layer in cases:
        nd = layer.weight.ndim - 2
        x = torch.randn(2, 4, *([9] * nd))
        with torch.no_grad():
            real = layer(x)
            with ShapeOnlyMode(layer) as mode:
                fake = layer(x)
        assert fake.shape == real.shape and not fake.any()
        assert mode.total == macs_per_module(copy.deepcopy(layer), (x,))[0]


def test_skipped_pooling_has_the_real_shapes_and_errors() -> None:
    """Pooling on a large input is shaped by the meta kernels: same shapes (ceil mode, padding,
    adaptive sizes, 1d/3d) and the same refusal of a window larger than the input."""
    nn = torch.nn
    cases = [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 16, 57, 57)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), (1, 16, 57, 57)),
        (nn.AdaptiveAvgPool2d(7), (1, 16, 50, 50)),
        (nn.AdaptiveMaxPool2d((5, 3)), (1, 16, 50, 50)),
        (nn.MaxPool3d((1, 3, 3), (1, 2, 2)), (1, 8, 4, 40, 40)),
        (nn.MaxPool1d(4, 3), (2, 16, 999)),
    ]
    for layer, shape in cases:
        x = torch.randn(*shape)
        with torch.no_grad():
            real = layer(x)
            with ShapeOnlyMode(layer) as mode:
                fake = layer(x)
        assert fake.shape == real.shape and not fake.any(), layer
        assert mode.total == 0
    with pytest.raises(RuntimeError), torch.no_grad(), ShapeOnlyMode(nn.MaxPool2d(99)):
        nn.MaxPool2d(99)(torch.randn(1, 16, 64, 64))
