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
from prunekit.engine.macs import ShapeOnlyMode
from prunekit.engine.skipped import shape_of_skipped
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


class _Leaves(torch.nn.Module):
    """Every case of the analysis' leaf shortcut (ShapeOnlyMode.call_leaf) and of its fall-backs:
    Conv1d/2d/3d, strides, dilation, groups, no bias, 'same' and reflect padding, a hooked conv,
    BatchNorm1d on 2-D and 3-D input, BatchNorm without running statistics, activations in
    place and not, dropout."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.c3 = nn.Conv2d(8, 8, 3, padding="same")
        self.c4 = nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect")
        self.hooked = nn.Conv2d(8, 8, 1)
        self.hooked.register_forward_hook(lambda m, i, o: o * 2)
        self.b2 = nn.BatchNorm2d(8, track_running_stats=False)
        self.d1 = nn.Conv1d(8, 6, 3, padding=1)
        self.n1 = nn.BatchNorm1d(6)
        self.v3 = nn.Conv3d(1, 4, 3, padding=1)
        self.n3 = nn.BatchNorm3d(4)
        self.fc = nn.Linear(6 + 4, 5)
        self.n0 = nn.BatchNorm1d(5)

        self.act = nn.Hardswish(inplace=True)
        self.gelu = nn.GELU()
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.gelu(self.act(self.b1(self.c1(x)))))
        y = self.b2(self.hooked(self.c4(self.c3(self.c2(y)))))
        z = self.n1(self.d1(y.flatten(2)))  # (N, 6, L): BatchNorm1d on 3-D input
        v = self.n3(self.v3(y[:, :1].unsqueeze(1)))
        feats = torch.cat([z.mean(2), v.mean((2, 3, 4))], dim=1)
        return self.n0(self.fc(feats))  # BatchNorm1d on 2-D input


def test_the_analysis_leaf_shortcut_changes_nothing_but_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _Leaves().eval()
    x = torch.randn(2, 3, 16, 16)
    calls = []
    real = ShapeOnlyMode.call_leaf

    def counting(self, name, module, args, kwargs):  # noqa: ANN001, ANN202
        out = real(self, name, module, args, kwargs)
        calls.append((name, out is not NotImplemented))
        return out

    monkeypatch.setattr(ShapeOnlyMode, "call_leaf", counting)
    graph, macs = analyse(model, x)
    taken = {name for name, used in calls if used}
    assert {"c1", "b1", "c2", "d1", "n1", "v3", "n3", "n0", "act", "gelu", "drop"} <= taken
    assert not taken & {"c3", "c4", "hooked", "b2"}  # 'same' and reflect padding, a hook, no statistics
    monkeypatch.delattr(ShapeOnlyMode, "call_leaf")  # the module is called under the mode instead
    graph_called, macs_called = analyse(model, x)
    assert macs == macs_called
    assert macs[0] == macs_per_module(model, x)[0]
    assert group_signature(graph) == group_signature(graph_called)


def test_the_leaf_shortcut_raises_what_the_kernel_raises() -> None:
    conv = torch.nn.Conv2d(4, 8, 3)
    mode = ShapeOnlyMode(conv)
    with torch.no_grad(), pytest.raises(RuntimeError, match="channels"):
        mode.call_leaf("", conv, (torch.randn(1, 5, 8, 8),), {})


@pytest.mark.parametrize("name", ZOO_IDS)
def test_chosen_modules_count_what_every_module_counts(name: str) -> None:
    """Counting only chosen modules (convolutions by their weight, the rest through hooks on
    them) gives those modules the counts the global hooks give them."""
    model = MAKERS[name]()
    inputs = model.example_inputs()
    total, every = fast_macs_per_module(model, inputs)
    chosen = [n for n, _ in model.named_modules()]
    t, some = fast_macs_per_module(model, inputs, modules=chosen)
    assert t == total
    assert {n: some.get(n, 0) for n in chosen} == {n: every.get(n, 0) for n in chosen}
    assert fast_macs_per_module(model, inputs, modules=()) == (total, {"": total})


def test_a_convolution_weight_held_twice_is_counted_through_hooks() -> None:
    """Two convolutions sharing one weight: each call is counted to the layer that made it,
    as the hooks count it, not to whichever holds the weight."""

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.b = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.b.weight = self.a.weight
            self.c = torch.nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(self.b(self.a(x)) + self.b(x))

    model = Tied().eval()
    x = torch.randn(1, 4, 8, 8)
    _, every = fast_macs_per_module(model, x)
    _, some = fast_macs_per_module(model, x, modules=["a", "b", "c"])
    assert {n: some[n] for n in "abc"} == {n: every[n] for n in "abc"}
    assert some["b"] == 2 * some["a"]


def test_a_forward_patched_onto_a_layer_runs_and_is_counted() -> None:
    """A conv whose instance ``forward`` was replaced (a wrapper adding a branch) is called, not
    answered by the shortcut, and its extra MACs are counted to it."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    conv, extra = model[0], torch.nn.Conv2d(3, 8, 1)

    def patched(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.Conv2d.forward(conv, x) + extra(x)

    conv.forward = patched
    x = torch.randn(1, 3, 8, 8)
    real_total, real_per = macs_per_module(model, x)
    _, (total, per) = analyse(model, x)
    assert total == real_total and per["0"] == real_per["0"] == 3 * 8 * 9 * 64 + 3 * 8 * 64
    assert fast_macs_per_module(model, x, modules=["0", "2"])[1]["0"] == real_per["0"]
