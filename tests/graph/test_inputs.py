"""Example inputs of any structure: tensor, tuple, list argument, dict and keyword arguments."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.errors import ExampleInputError
from prunekit.inputs import ExampleInputs, as_example_inputs, as_input_tuple


class TwoInputs(nn.Module):
    """Two image inputs, the second optional; their conv features are added (one group)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(1, 8, 1), nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        y = self.a(x)
        if extra is not None:
            y = y + self.b(extra)
        return self.head(torch.relu(y) * scale)


class ListInput(nn.Module):
    """Takes ``list[Tensor]`` like torchvision detection models."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

    def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        return self.head(torch.relu(self.a(torch.stack(images))))


X, E = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)


@pytest.mark.parametrize(
    "given, args, kwargs, tensors",
    [
        (X, (X,), {}, [X]),
        ((X, E), (X, E), {}, [X, E]),
        ([X, E], ([X, E],), {}, [X, E]),
        ({"x": X, "extra": E}, (), {"x": X, "extra": E}, [X, E]),
        (ExampleInputs((X,), {"extra": E}), (X,), {"extra": E}, [X, E]),
    ],
    ids=["tensor", "tuple", "list", "dict", "ExampleInputs"],
)
def test_every_form_normalises(given, args, kwargs, tensors):
    inputs = as_example_inputs(given)
    assert len(inputs.args) == len(args) and list(inputs.kwargs) == list(kwargs)
    found = inputs.tensors()
    assert len(found) == len(tensors) and all(t is u for t, u in zip(found, tensors))


def test_bad_forms_name_the_type():
    with pytest.raises(ExampleInputError, match="set"):
        as_example_inputs({1, 2})
    with pytest.raises(ExampleInputError, match="list"):
        as_example_inputs([1, 2, 3])
    assert as_input_tuple([X, E]) == (X, E)  # the older form keeps working


def test_map_and_call_keep_the_structure():
    inputs = ExampleInputs(([X, X],), {"extra": E}).map(lambda t: t[:1])
    assert inputs.args[0][0].shape[0] == 1 and inputs.kwargs["extra"].shape[0] == 1
    assert ExampleInputs((X,), {"extra": E}).call(TwoInputs()).shape == (2, 2, 4, 4)


@pytest.mark.parametrize(
    "given",
    [(X, E), {"x": X, "extra": E}, ExampleInputs((X,), {"extra": E, "scale": 2.0})],
    ids=["tuple", "kwargs", "args+kwargs"],
)
@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_graph_from_keyword_inputs(given, tracer):
    graph = prunekit.DependencyGraph(TwoInputs(), given, tracer=tracer)
    group = graph.group_of("a")
    assert group.prunable and group is graph.group_of("b") and "add" in group.couplings


def test_an_optional_input_left_out_is_not_analysed():
    graph = prunekit.DependencyGraph(TwoInputs(), X)
    assert graph.group_of("a").prunable and graph.group_of("b") is None


@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_a_list_argument(tracer):
    graph = prunekit.DependencyGraph(ListInput(), [X[0], X[1]], tracer=tracer)
    assert graph.backend == tracer and graph.group_of("a").prunable
