"""A zoo of tiny hand-made nets, one per topology prunekit must handle.

Each class docstring names the topology it covers. Class attributes hold what the tests expect:

- ``INPUT_SHAPES``: one shape per forward argument; ``example_inputs()`` builds them.
- ``EXPECTED``: ``{sparsity: {module name: (in, out)}}``, the channel counts after
  ``prune_(model, inputs, sparsity=s)`` (local scope, l1, round_to=1, exact_only=False), derived
  by hand from the documented semantics: a prunable group of n channels loses
  ``floor(s * n + 1e-6)``; chunk / grouped conv / GroupNorm blocks each lose the same number.
  A module not listed keeps its original counts. ``(in, out)`` means in/out channels for convs,
  in/out features for Linear, and (C, C) for BatchNorm / GroupNorm / LayerNorm / PReLU.
- ``COUPLINGS``: ``{module name: ops}`` that must be among ``group_of(name).couplings``.
- ``INEXACT``: ``{module name: (layer type, norm module)}``: ``group_of(name)`` is not exact and
  its reason names the norm layer type and the norm module.

The derivations are written next to each ``EXPECTED`` so a failing count can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ZOO", "ZooNet", "build", "channel_counts", "randomize_bn", "SliceNet"]


def channel_counts(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) channel/feature counts of a layer, read from its attributes; None if it has none."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.in_channels, module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features, module.num_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels, module.num_channels
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[0], module.normalized_shape[0]
    if isinstance(module, nn.PReLU):
        return module.num_parameters, module.num_parameters
    return None


def randomize_bn(model: nn.Module, *, steps: int = 3, seed: int = 0) -> nn.Module:
    """Gives every norm layer non-trivial affine parameters and running statistics.

    Affine weights/biases are drawn at random, then a few forwards in train mode on random inputs
    move the BatchNorm running mean/var away from 0/1. Leaves the model in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            norm = isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm))
            if norm and module.weight is not None:
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.5)
        model.train()
        for _ in range(steps):
            model(*(torch.randn(shape, generator=gen) * 2 + 0.3 for shape in model.INPUT_SHAPES))
    return model.eval()


class ZooNet(nn.Module):
    """Base of the zoo nets: example inputs from ``INPUT_SHAPES`` plus the expectations."""

    INPUT_SHAPES = ((2, 3, 8, 8),)
    EXPECTED = {}
    COUPLINGS = {}
    INEXACT = {}

    def example_inputs(self) -> tuple[Tensor, ...]:
        gen = torch.Generator().manual_seed(1)
        return tuple(torch.randn(shape, generator=gen) for shape in self.INPUT_SHAPES)


def conv_bn(cin: int, cout: int, *, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    """conv -> bn -> relu, as ``.0`` ``.1`` ``.2`` (torchvision naming)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle, written as torchvision writes it."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, c, h, w)


# --------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.downsample(x))


class ResidualNet(ZooNet):
    """Residual add with a downsample conv (ResNet BasicBlock, stride 2), torchvision names.

    Groups: stem (8: stem.0 out, layer1.0.conv1 in, downsample in); conv1 out (16);
    residual (16: conv2 out + downsample out, coupled by add; head in); head out locked.
    """

    COUPLINGS = {"layer1.0.conv2": {"add"}, "layer1.0.downsample.0": {"add"}}
    # 0.5: 8 -> 4, 16 -> 8.  0.3: 8 - floor(2.4) = 6, 16 - floor(4.8) = 12.
    # fmt: off
    EXPECTED = {
        0.5: {
            "stem.0": (3, 4), "stem.1": (4, 4),
            "layer1.0.conv1": (4, 8), "layer1.0.bn1": (8, 8),
            "layer1.0.conv2": (8, 8), "layer1.0.bn2": (8, 8),
            "layer1.0.downsample.0": (4, 8), "layer1.0.downsample.1": (8, 8),
            "head": (8, 4),
        },
        0.3: {
            "stem.0": (3, 6), "stem.1": (6, 6),
            "layer1.0.conv1": (6, 12), "layer1.0.bn1": (12, 12),
            "layer1.0.conv2": (12, 12), "layer1.0.bn2": (12, 12),
            "layer1.0.downsample.0": (6, 12), "layer1.0.downsample.1": (12, 12),
            "head": (12, 4),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.layer1 = nn.Sequential(BasicBlock(8, 16, stride=2))
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer1(self.stem(x)))


# --------------------------------------------------------------------------------------------
class DenseNet(ZooNet):
    """Cascaded concat (DenseNet-like): every layer reads the concat of all previous outputs.

    cat does not couple: stem, dense1, dense2, dense3 are four groups of 4; dense2 reads
    [stem, d1], dense3 (pre-activation BN over the concat) reads [stem, d1, d2], head reads all 4.
    """

    # 0.5: every group 4 -> 2.  0.3: 4 - floor(1.2) = 3.
    # fmt: off
    EXPECTED = {
        0.5: {
            "stem": (3, 2), "dense1.0": (2, 2), "dense1.1": (2, 2),
            "dense2.0": (4, 2), "dense2.1": (2, 2),
            "dense3_bn": (6, 6), "dense3": (6, 2), "head": (8, 2),
        },
        0.3: {
            "stem": (3, 3), "dense1.0": (3, 3), "dense1.1": (3, 3),
            "dense2.0": (6, 3), "dense2.1": (3, 3),
            "dense3_bn": (9, 9), "dense3": (9, 3), "head": (12, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.dense1 = conv_bn(4, 4)
        self.dense2 = conv_bn(8, 4)
        self.dense3_bn = nn.BatchNorm2d(12)
        self.dense3 = nn.Conv2d(12, 4, 3, padding=1)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.stem(x)
        x1 = self.dense1(x0)
        x2 = self.dense2(torch.cat([x0, x1], dim=1))
        x3 = self.dense3(F.relu(self.dense3_bn(torch.cat([x0, x1, x2], dim=1))))
        return self.head(torch.cat([x0, x1, x2, x3], dim=1))


# --------------------------------------------------------------------------------------------
class ConcatChunkNet(ZooNet):
    """Concat of two branches, then chunk(2) exactly at the concat boundary.

    Groups: a (4), b (4) (the two halves, each one chunk block); c+d (6, add); head out locked.
    """

    COUPLINGS = {"conv_c": {"add"}}
    # 0.5: 4 -> 2, 6 -> 3.  0.3: 4 -> 3, 6 - floor(1.8) = 5.
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv_a": (3, 2), "bn_a": (2, 2), "conv_b": (3, 2), "bn_b": (2, 2),
            "conv_c": (2, 3), "conv_d": (2, 3), "head": (3, 2),
        },
        0.3: {
            "conv_a": (3, 3), "bn_a": (3, 3), "conv_b": (3, 3), "bn_b": (3, 3),
            "conv_c": (3, 5), "conv_d": (3, 5), "head": (5, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv_b, self.bn_b = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv_c = nn.Conv2d(4, 6, 3, padding=1)
        self.conv_d = nn.Conv2d(4, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.bn_a(self.conv_a(x)))
        b = F.relu(self.bn_b(self.conv_b(x)))
        c1, c2 = torch.cat([a, b], dim=1).chunk(2, dim=1)
        return self.head(F.relu(self.conv_c(c1) + self.conv_d(c2)))


class ConcatSplitNet(ZooNet):
    """Concat of two branches, then torch.split with literal sizes [4, 4].

    split with a list of sizes locks every channel it splits: conv_a and conv_b keep all 8
    outputs. Only the c+d group (6, add) is pruned.
    """

    # fmt: off
    EXPECTED = {
        0.5: {"conv_c": (4, 3), "conv_d": (4, 3), "head": (3, 2)},
        0.3: {"conv_c": (4, 5), "conv_d": (4, 5), "head": (5, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_b = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_c = nn.Conv2d(4, 6, 3, padding=1)
        self.conv_d = nn.Conv2d(4, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        c = torch.cat([F.relu(self.conv_a(x)), F.relu(self.conv_b(x))], dim=1)
        c1, c2 = torch.split(c, [4, 4], dim=1)
        return self.head(F.relu(self.conv_c(c1) + self.conv_d(c2)))


# --------------------------------------------------------------------------------------------
class SpatialConcatNet(ZooNet):
    """Concat along spatial dims (dim=2 and dim=-1): couples the inputs 1:1, not a channel concat.

    Groups: a+b+w (6: cat on H couples a,b; cat on W couples a,w); h+v (8: add after global pool,
    with both BNs and fc in, 1 feature per channel after flatten); fc out locked.
    """

    COUPLINGS = {"conv_b": {"cat"}, "conv_w": {"cat"}, "conv_h": {"add"}}
    # 0.5: 6 -> 3, 8 -> 4.  0.3: 6 - floor(1.8) = 5, 8 - floor(2.4) = 6.
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv_a": (3, 3), "conv_b": (3, 3), "conv_w": (3, 3),
            "conv_h": (3, 4), "bn_h": (4, 4), "conv_v": (3, 4), "bn_v": (4, 4), "fc": (4, 3),
        },
        0.3: {
            "conv_a": (3, 5), "conv_b": (3, 5), "conv_w": (3, 5),
            "conv_h": (5, 6), "bn_h": (6, 6), "conv_v": (5, 6), "bn_v": (6, 6), "fc": (6, 3),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 6, 3, padding=1)
        self.conv_b = nn.Conv2d(3, 6, 3, padding=1)
        self.conv_w = nn.Conv2d(3, 6, 3, padding=1)
        self.conv_h, self.bn_h = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv_v, self.bn_v = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        a = self.conv_a(x)
        h = torch.cat([a, self.conv_b(x)], dim=2)
        v = torch.cat([a, self.conv_w(x)], dim=-1)
        h = F.adaptive_avg_pool2d(self.bn_h(self.conv_h(h)), 1)
        v = F.adaptive_avg_pool2d(self.bn_v(self.conv_v(v)), 1)
        return self.fc(F.relu(h + v).flatten(1))


# --------------------------------------------------------------------------------------------
class ChunkReuseNet(ZooNet):
    """3-way chunk along channels, with one conv reused on two of the chunks.

    stem (9) is chunked into p, q, r (3 each); ``shared`` reads p and q, which ties p[j] to q[j];
    the three blocks lose the same number. Block size 3 is chosen so that every reading of the
    group size (9 positions, 6 distinct channels, 3 block positions) gives 1 removal per block
    at 0.5: keep 2 of 3 per block. shared out (4) and conv_r out (4) are groups of their own;
    head reads [shared(p), shared(q), conv_r(r)].
    """

    COUPLINGS = {"stem": {"chunk"}}
    # fmt: off
    EXPECTED = {
        0.5: {
            "stem": (3, 6), "stem_bn": (6, 6),
            "shared": (2, 2), "conv_r": (2, 2), "head": (6, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(3, 9, 3, padding=1), nn.BatchNorm2d(9)
        self.shared = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_r = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(12, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        p, q, r = F.relu(self.stem_bn(self.stem(x))).chunk(3, dim=1)
        y = torch.cat([self.shared(p), self.shared(q), self.conv_r(r)], dim=1)
        return self.head(F.relu(y))


# --------------------------------------------------------------------------------------------
class DepthwiseNet(ZooNet):
    """Depthwise convs: 1:1 (groups == channels) and with channel multiplier 2 (6 -> 12).

    Groups: a (8: stem out, dw1 in/out, pw1 in); b (6: pw1 out, dw2 in; dw2 out channel 2i, 2i+1
    belong to channel i, pw2 reads them); pw2 out locked.
    """

    # 0.5: 8 -> 4, 6 -> 3.  0.3: 8 -> 6, 6 -> 5.
    # fmt: off
    EXPECTED = {
        0.5: {
            "stem": (3, 4), "stem_bn": (4, 4), "dw1": (4, 4), "dw1_bn": (4, 4),
            "pw1": (4, 3), "pw1_bn": (3, 3), "dw2": (3, 6), "dw2_bn": (6, 6), "pw2": (6, 2),
        },
        0.3: {
            "stem": (3, 6), "stem_bn": (6, 6), "dw1": (6, 6), "dw1_bn": (6, 6),
            "pw1": (6, 5), "pw1_bn": (5, 5), "dw2": (5, 10), "dw2_bn": (10, 10), "pw2": (10, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.dw1, self.dw1_bn = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.pw1, self.pw1_bn = nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6)
        self.dw2, self.dw2_bn = nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.BatchNorm2d(12)
        self.pw2 = nn.Conv2d(12, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        x = F.relu(self.dw1_bn(self.dw1(x)))
        x = F.relu(self.pw1_bn(self.pw1(x)))
        x = F.relu(self.dw2_bn(self.dw2(x)))
        return self.pw2(x)


class GroupedNet(ZooNet):
    """Chain of grouped convs (groups 2 then 4): balanced removal in every conv group.

    Groups: a (8: stem out, g1 in, 2 conv groups of 4); b (8: g1 out in 2 groups, g2 in in 4
    groups of 2); c (16: g2 out, 4 groups of 4). At 0.5: a loses 2 per g1 group, b 1 per g2 group
    (= 2 per g1 group), c 2 per g2 group.
    """

    # fmt: off
    EXPECTED = {
        0.5: {
            "stem.0": (3, 4), "stem.1": (4, 4), "g1.0": (4, 4), "g1.1": (4, 4),
            "g2.0": (4, 8), "g2.1": (8, 8), "head": (8, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.g1 = conv_bn(8, 8, groups=2)
        self.g2 = conv_bn(8, 16, groups=4)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.g2(self.g1(self.stem(x))))


# --------------------------------------------------------------------------------------------
class ShuffleUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1, self.bn1 = nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half)
        self.dw, self.bn2 = nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), nn.BatchNorm2d(half)
        self.conv3, self.bn3 = nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=1)
        y = F.relu(self.bn1(self.conv1(x2)))
        y = self.bn2(self.dw(y))
        y = F.relu(self.bn3(self.conv3(y)))
        return channel_shuffle(torch.cat([x1, y], dim=1), 2)


class ShuffleNet(ZooNet):
    """ShuffleNet-v2 unit (stride 1): chunk(2), branch on one half, concat, channel shuffle(2).

    The shuffle ties x1[j] (stem channel j) to conv3 out channel j; the chunk makes stem's two
    halves lose the same number. Merged group: 8 distinct channels -> floor(0.5 * 8) = 4 removals,
    2 per half. Branch middle group (conv1 out, dw): 4 -> 2. Head reads 2 + 2 interleaved.
    0.3: 8 -> floor(2.4) = 2 removals, 1 per half; middle 4 -> 3.
    """

    COUPLINGS = {"unit.conv3": {"shuffle"}, "stem": {"chunk", "shuffle"}}
    # fmt: off
    EXPECTED = {
        0.5: {
            "stem": (3, 4), "stem_bn": (4, 4),
            "unit.conv1": (2, 2), "unit.bn1": (2, 2), "unit.dw": (2, 2), "unit.bn2": (2, 2),
            "unit.conv3": (2, 2), "unit.bn3": (2, 2), "head": (4, 2),
        },
        0.3: {
            "stem": (3, 6), "stem_bn": (6, 6),
            "unit.conv1": (3, 3), "unit.bn1": (3, 3), "unit.dw": (3, 3), "unit.bn2": (3, 3),
            "unit.conv3": (3, 3), "unit.bn3": (3, 3), "head": (6, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.unit = ShuffleUnit(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.unit(F.relu(self.stem_bn(self.stem(x)))))


# --------------------------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SENet(ZooNet):
    """Squeeze-excite gate: x * sigmoid(fc2(relu(fc1(avgpool(x))))).

    Groups: x (8: stem out, fc1 in, fc2 out via mul, head in); hidden (4: fc1 out, fc2 in).
    """

    COUPLINGS = {"se.fc2": {"mul"}}
    # 0.5: 8 -> 4, 4 -> 2.  0.3: 8 -> 6, 4 -> 3.
    # fmt: off
    EXPECTED = {
        0.5: {"stem": (3, 4), "stem_bn": (4, 4), "se.fc1": (4, 2), "se.fc2": (2, 4), "head": (4, 2)},
        0.3: {"stem": (3, 6), "stem_bn": (6, 6), "se.fc1": (6, 3), "se.fc2": (3, 6), "head": (6, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.se = SqueezeExcite(8, 4)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.se(F.relu(self.stem_bn(self.stem(x)))))


# --------------------------------------------------------------------------------------------
class FlattenLinearNet(ZooNet):
    """conv -> flatten -> Linear on a non-square 5x7 map: each channel is 35 Linear features.

    Groups: conv1 out (6); conv2 out (8, 35 fc1 features each); fc1 out (16); fc2 out locked.
    """

    INPUT_SHAPES = ((2, 3, 10, 14),)
    COUPLINGS = {"conv2": {"flatten"}}
    # 0.5: 6 -> 3, 8 -> 4 (fc1 in 4 * 35), 16 -> 8.
    # 0.3: 6 -> 5, 8 -> 6 (fc1 in 6 * 35), 16 - floor(4.8) = 12.
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv1": (3, 3), "bn1": (3, 3), "conv2": (3, 4), "bn2": (4, 4),
            "fc1": (140, 8), "fc2": (8, 4),
        },
        0.3: {
            "conv1": (3, 5), "bn1": (5, 5), "conv2": (5, 6), "bn2": (6, 6),
            "fc1": (210, 12), "fc2": (12, 4),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(8 * 5 * 7, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(self.flatten(x))))


# --------------------------------------------------------------------------------------------
class ConvTransposeNet(ZooNet):
    """ConvTranspose2d (weight is (in, out/groups, k, k)) and a grouped ConvTranspose2d.

    Groups: a (8: conv1 out, up1 in); b (8: up1 out, up2 in, 2 groups of 4); c (8: up2 out,
    2 groups); head out locked.
    """

    # 0.5: each 8 -> 4 (2 per conv group).  0.3: 8 -> 6 (1 per conv group for b, c).
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv1": (3, 4), "bn1": (4, 4), "up1": (4, 4), "bn2": (4, 4),
            "up2": (4, 4), "bn3": (4, 4), "head": (4, 2),
        },
        0.3: {
            "conv1": (3, 6), "bn1": (6, 6), "up1": (6, 6), "bn2": (6, 6),
            "up2": (6, 6), "bn3": (6, 6), "head": (6, 2),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8)
        self.up1, self.bn2 = nn.ConvTranspose2d(8, 8, 2, stride=2), nn.BatchNorm2d(8)
        self.up2, self.bn3 = nn.ConvTranspose2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.up1(x)))
        x = F.relu(self.bn3(self.up2(x)))
        return self.head(x)


# --------------------------------------------------------------------------------------------
class MultiIONet(ZooNet):
    """Two inputs (3 and 1 channels) and two outputs; one output is an intermediate feature.

    conv_a(a) + conv_b(b) couples the two branches (add); the second output is relu(conv_b(b)),
    which locks that whole group. Only conv_t's out group (8) is pruned.
    """

    INPUT_SHAPES = ((2, 3, 8, 8), (2, 1, 8, 8))
    COUPLINGS = {"conv_a": {"add"}}
    # fmt: off
    EXPECTED = {
        0.5: {"conv_t": (6, 4), "bn_t": (4, 4), "head": (4, 2)},
        0.3: {"conv_t": (6, 6), "bn_t": (6, 6), "head": (6, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 6, 3, padding=1)
        self.conv_b = nn.Conv2d(1, 6, 3, padding=1)
        self.conv_t, self.bn_t = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        fb = F.relu(self.conv_b(b))
        s = F.relu(self.conv_a(a)) + fb
        t = F.relu(self.bn_t(self.conv_t(s)))
        return self.head(t), fb


# --------------------------------------------------------------------------------------------
class SingleChannelNet(ZooNet):
    """A conv with a single output channel in the middle (a group of size 1: not prunable).

    Groups: a (8: conv1 out, squeeze in); squeeze out (1, not prunable); b (6: expand out).
    """

    # 0.5: 8 -> 4, 6 -> 3.  0.3: 8 -> 6, 6 -> 5.
    # fmt: off
    EXPECTED = {
        0.5: {"conv1": (3, 4), "bn1": (4, 4), "squeeze": (4, 1), "expand": (1, 3), "bn2": (3, 3), "head": (3, 2)},
        0.3: {"conv1": (3, 6), "bn1": (6, 6), "squeeze": (6, 1), "expand": (1, 5), "bn2": (5, 5), "head": (5, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.squeeze = nn.Conv2d(8, 1, 1)
        self.expand, self.bn2 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.squeeze(x))
        return self.head(F.relu(self.bn2(self.expand(x))))


# --------------------------------------------------------------------------------------------
class Conv1dNet(ZooNet):
    """Conv1d with BatchNorm1d and a residual add over a bottleneck.

    Groups: a (8: conv1 out, conv2a in, conv2b out via add, head in); m (6: conv2a out).
    """

    INPUT_SHAPES = ((2, 2, 16),)
    COUPLINGS = {"conv2b": {"add"}}
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv1": (2, 4), "bn1": (4, 4), "conv2a": (4, 3), "bn2a": (3, 3),
            "conv2b": (3, 4), "bn2b": (4, 4), "head": (4, 3),
        },
        0.3: {
            "conv1": (2, 6), "bn1": (6, 6), "conv2a": (6, 5), "bn2a": (5, 5),
            "conv2b": (5, 6), "bn2b": (6, 6), "head": (6, 3),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv1d(2, 8, 3, padding=1), nn.BatchNorm1d(8)
        self.conv2a, self.bn2a = nn.Conv1d(8, 6, 3, padding=1), nn.BatchNorm1d(6)
        self.conv2b, self.bn2b = nn.Conv1d(6, 8, 3, padding=1), nn.BatchNorm1d(8)
        self.head = nn.Conv1d(8, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2b(self.conv2b(F.relu(self.bn2a(self.conv2a(x)))))
        return self.head(F.relu(x + y))


class Conv3dNet(ZooNet):
    """Conv3d with BatchNorm3d, a depthwise Conv3d, global pooling, flatten and a Linear head.

    Groups: a (8: conv1 out, dw in/out); b (6: conv3 out, fc in, 1 feature per channel).
    """

    INPUT_SHAPES = ((2, 1, 4, 8, 8),)
    # fmt: off
    EXPECTED = {
        0.5: {
            "conv1": (1, 4), "bn1": (4, 4), "dw": (4, 4), "bn2": (4, 4),
            "conv3": (4, 3), "bn3": (3, 3), "fc": (3, 4),
        },
        0.3: {
            "conv1": (1, 6), "bn1": (6, 6), "dw": (6, 6), "bn2": (6, 6),
            "conv3": (6, 5), "bn3": (5, 5), "fc": (5, 4),
        },
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv3d(1, 8, 3, padding=1), nn.BatchNorm3d(8)
        self.dw, self.bn2 = nn.Conv3d(8, 8, 3, padding=1, groups=8), nn.BatchNorm3d(8)
        self.conv3, self.bn3 = nn.Conv3d(8, 6, 1), nn.BatchNorm3d(6)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.dw(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool3d(x, 1), 1))


# --------------------------------------------------------------------------------------------
class PReLUNet(ZooNet):
    """PReLU with one parameter per channel (pruned with its group) and a shared one (kept).

    Groups: a (8: conv1 out, bn, act1); b (6: conv2 out, act2); act3 has 1 parameter.
    """

    # 0.5: 8 -> 4, 6 -> 3.  0.3: 8 -> 6, 6 -> 5.
    # fmt: off
    EXPECTED = {
        0.5: {"conv1": (3, 4), "bn1": (4, 4), "act1": (4, 4), "conv2": (4, 3), "act2": (3, 3), "head": (3, 2)},
        0.3: {"conv1": (3, 6), "bn1": (6, 6), "act1": (6, 6), "conv2": (6, 5), "act2": (5, 5), "head": (5, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(8)
        self.conv2, self.act2 = nn.Conv2d(8, 6, 3, padding=1), nn.PReLU(6)
        self.act3 = nn.PReLU()
        self.head = nn.Conv2d(6, 2, 1)
        with torch.no_grad():  # distinct per-channel slopes, so a mis-sliced PReLU shows
            self.act1.weight.copy_(torch.linspace(0.05, 0.6, 8))
            self.act2.weight.copy_(torch.linspace(-0.3, 0.4, 6))

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act3(self.act2(self.conv2(x)))
        return self.head(x)


# --------------------------------------------------------------------------------------------
class LayerNormBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.ln = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)  # ConvNeXt: LayerNorm over channels, channels last
        return self.ln(x).permute(0, 3, 1, 2)


class LayerNormNet(ZooNet):
    """LayerNorm over channels (ConvNeXt style, via permute): its group is prunable, not exact.

    Groups: a (8: block.conv out, block.ln, conv2 in; inexact); b (6: conv2 out).
    """

    INEXACT = {"block.conv": ("LayerNorm", "block.ln")}
    # fmt: off
    EXPECTED = {
        0.5: {"block.conv": (3, 4), "block.ln": (4, 4), "conv2": (4, 3), "head": (3, 2)},
        0.3: {"block.conv": (3, 6), "block.ln": (6, 6), "conv2": (6, 5), "head": (5, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.block = LayerNormBlock(8)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.relu(self.conv2(F.gelu(self.block(x)))))


class GroupNormNet(ZooNet):
    """GroupNorm(2 groups, 8 channels): prunable but not exact; each norm group loses the same.

    Groups: a (8: conv1 out, gn, conv2 in; inexact); b (6: conv2 out, bn).
    """

    INEXACT = {"conv1": ("GroupNorm", "gn")}
    # 0.5: 8 -> 4 (2 per norm group), 6 -> 3.  0.3: 8 -> 6 (1 per norm group), 6 -> 5.
    # fmt: off
    EXPECTED = {
        0.5: {"conv1": (3, 4), "gn": (4, 4), "conv2": (4, 3), "bn": (3, 3), "head": (3, 2)},
        0.3: {"conv1": (3, 6), "gn": (6, 6), "conv2": (6, 5), "bn": (5, 5), "head": (5, 2)},
    }
    # fmt: on

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.gn = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8)
        self.conv2, self.bn = nn.Conv2d(8, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.gn(self.conv1(x)))
        return self.head(F.relu(self.bn(self.conv2(x))))


# --------------------------------------------------------------------------------------------
class SliceNet(ZooNet):
    """Tensor slicing with literal bounds: x[:, :2] pins stem channels 0 and 1 in place.

    Not in ZOO: how many of the 6 free-or-pinned channels go is not fixed by the contract, only
    that channels 0 and 1 are kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.conv = nn.Conv2d(6, 4, 3, padding=1)
        self.side = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.stem(x))
        return self.head(F.relu(self.conv(x) + self.side(x[:, :2])))


def build(cls: type[ZooNet], *, seed: int = 0) -> ZooNet:
    """Builds a zoo net with seeded weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomize_bn(cls())


_CLASSES: list[type[ZooNet]] = [
    ResidualNet,
    DenseNet,
    ConcatChunkNet,
    ConcatSplitNet,
    SpatialConcatNet,
    ChunkReuseNet,
    DepthwiseNet,
    GroupedNet,
    ShuffleNet,
    SENet,
    FlattenLinearNet,
    ConvTransposeNet,
    MultiIONet,
    SingleChannelNet,
    Conv1dNet,
    Conv3dNet,
    PReLUNet,
    LayerNormNet,
    GroupNormNet,
]


def _factory(cls: type[ZooNet]) -> Callable[[], ZooNet]:
    def make() -> ZooNet:
        return build(cls)

    make.__name__ = f"make_{cls.__name__}"
    return make


#: (name, factory) for every zoo net; the factory returns a fresh, seeded, eval-mode model.
ZOO: list[tuple[str, Callable[[], ZooNet]]] = [(cls.__name__, _factory(cls)) for cls in _CLASSES]
