"""Property: any small CNN built from the supported blocks prunes (exact groups only) to a model
that computes what the original computes with the removed channels zeroed."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from zoo import channel_shuffle, randomize_bn

import prunekit

WIDTHS = st.sampled_from([2, 4, 6, 8])
BLOCKS = ("conv", "residual", "concat", "chunk", "depthwise", "grouped", "shuffle", "se")


def conv_bn_relu(cin: int, cout: int, *, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, groups=groups), nn.BatchNorm2d(cout), nn.ReLU())


# Every block keeps the channel count even (the stem width is even), so chunk(2), groups=2 and
# shuffle(2) always divide it. ``out`` is the block's output width.
class Residual(nn.Module):
    def __init__(self, c: int, w: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(c, w), nn.Conv2d(w, c, 3, padding=1), nn.BatchNorm2d(c))
        self.out = c

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class Concat(nn.Module):
    def __init__(self, c: int, w: int) -> None:
        super().__init__()
        self.branch = conv_bn_relu(c, w)
        self.out = c + w

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.branch(x)], dim=1)


class Chunk(nn.Module):
    def __init__(self, c: int, w: int) -> None:
        super().__init__()
        self.branch = conv_bn_relu(c // 2, c // 2)
        self.out = c

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.cat([self.branch(a), b], dim=1)


class Shuffle(nn.Module):
    def __init__(self, c: int, w: int) -> None:
        super().__init__()
        self.left, self.right = conv_bn_relu(c, w), conv_bn_relu(c, w)
        self.out = 2 * w

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], dim=1), 2)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, w: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, w, 1), nn.Conv2d(w, c, 1)
        self.out = c

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


CLASSES = {"residual": Residual, "concat": Concat, "chunk": Chunk, "shuffle": Shuffle, "se": SqueezeExcite}


def make_block(kind: str, c: int, w: int) -> tuple[nn.Module, int]:
    """Returns (block, output width) for block ``kind`` on ``c`` input channels, width ``w``."""
    if kind == "conv":
        return conv_bn_relu(c, w), w
    if kind == "depthwise":
        return conv_bn_relu(c, c, groups=c), c
    if kind == "grouped":
        return conv_bn_relu(c, w, groups=2), w
    block = CLASSES[kind](c, w)
    return block, block.out


@dataclass(frozen=True)
class NetSpec:
    in_channels: int
    size: int
    stem: int
    blocks: tuple[tuple[str, int], ...]
    linear_head: bool
    seed: int


class RandomNet(nn.Module):
    """stem conv, then the blocks of ``spec``, then a 1x1 conv head or flatten -> Linear."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.INPUT_SHAPES = ((2, spec.in_channels, spec.size, spec.size),)  # for randomize_bn
        layers, c = [conv_bn_relu(spec.in_channels, spec.stem)], spec.stem
        for kind, w in spec.blocks:
            block, c = make_block(kind, c, w)
            layers.append(block)
        self.body = nn.Sequential(*layers)
        self.flatten = nn.Flatten() if spec.linear_head else nn.Identity()
        self.head = nn.Linear(c * spec.size**2, 5) if spec.linear_head else nn.Conv2d(c, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.flatten(self.body(x)))


net_specs = st.builds(
    NetSpec,
    in_channels=st.integers(1, 3),
    size=st.integers(8, 12),
    stem=WIDTHS,
    blocks=st.lists(st.tuples(st.sampled_from(BLOCKS), WIDTHS), max_size=4).map(tuple),
    linear_head=st.booleans(),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=25, deadline=None)
@given(spec=net_specs, sparsity=st.floats(0.0, 0.9, exclude_max=True))
def test_exact_pruning_is_equivalent(spec: NetSpec, sparsity: float) -> None:
    torch.manual_seed(spec.seed)
    model = randomize_bn(RandomNet(spec), seed=spec.seed)
    inputs = (torch.randn(2, spec.in_channels, spec.size, spec.size),)
    original = copy.deepcopy(model)

    report = prunekit.prune_(model, inputs, sparsity=sparsity, exact_only=True)

    result = prunekit.check_equivalence(original, model, inputs, report)
    assert result.ok, f"max error {result.max_error} at scale {result.scale}"
    assert model(*inputs).shape == original(*inputs).shape
    assert report.params_after <= report.params_before
    model.train()
    model(*inputs).square().mean().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
