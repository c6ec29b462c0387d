"""The channel interpreter runs an fx graph as the model would: list arguments are mutable."""

from __future__ import annotations

import collections
import copy

import torch
import torch.fx
import torch.nn as nn

import prunekit
from prunekit.graph.interpreter import _values


def pad_to(sizes: list[int], limits: list[int]) -> list[int]:
    """Edits ``sizes`` in place, as torchvision's ``_get_window_and_shift_size`` (Swin3D) does."""
    for i in range(len(sizes)):
        sizes[i] = min(sizes[i], limits[i])
    return sizes


torch.fx.wrap("pad_to")


class MutatesListArg(nn.Module):
    """conv -> a wrapped function that mutates its list argument -> conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = pad_to([7, 7], [x.shape[2], x.shape[3]])
        y = torch.relu(self.a(x))
        return self.b(y[:, :, : size[0], : size[1]])


def test_a_function_may_mutate_its_list_argument():
    model = MutatesListArg().eval()
    x = torch.randn(2, 3, 5, 6)
    graph = prunekit.DependencyGraph(model, x)
    assert sum(g.prunable for g in graph.groups) == 1
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=True)
    assert model.a.out_channels == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_node_values_come_in_fresh_mutable_containers():
    graph = torch.fx.Graph()
    a, b = graph.placeholder("a"), graph.placeholder("b")
    env = {a: 1, b: 2}
    Pair = collections.namedtuple("Pair", "x y")
    im = torch.fx.immutable_collections
    frozen = im.immutable_list([a, im.immutable_list([b, 5])])
    args = (frozen, im.immutable_dict({"k": frozen}), Pair(a, [b]), slice(a, b, None), torch.Size([3]), "s")
    plain = _values(args, env)
    assert plain == ([1, [2, 5]], {"k": [1, [2, 5]]}, Pair(1, [2]), slice(1, 2, None), (3,), "s")
    assert type(plain[0]) is list and type(plain[0][1]) is list and type(plain[1]) is dict
    assert type(plain[2]) is Pair and type(plain[4]) is tuple
    # what fx's own lookup gives, values for values
    assert plain == torch.fx.node.map_arg(args, env.__getitem__)
    plain[0][1].append(3)  # a copy: the node's arguments are untouched
    assert frozen == [a, [b, 5]]
