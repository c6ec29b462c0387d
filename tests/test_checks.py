"""The finiteness check: parameters and BatchNorm statistics finite; other buffers free of NaN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.checks import check_finite, nonfinite_tensors
from prunekit.errors import NonFiniteError


class ClampedInput(nn.Module):
    """conv -> ReLU -> a Linear-like conv whose input is clamped to buffers ``[-inf, +inf]``, as
    timm's Gemma 4 ViT clamps its projections' inputs (bounds left infinite when unused)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 4, 1)
        self.register_buffer("input_min", torch.tensor(float("-inf")))
        self.register_buffer("input_max", torch.tensor(float("inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.a(x)))
        return self.b(torch.clamp(y, self.input_min, self.input_max))


def test_infinite_buffers_are_legitimate_and_the_model_prunes():
    model = ClampedInput().eval()
    x = torch.randn(2, 3, 6, 6)
    assert nonfinite_tensors(model) == {}
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=True)
    assert model.a.out_channels == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_a_nan_buffer_is_still_an_error():
    model = ClampedInput()
    model.input_min.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="input_min holds NaN"):
        check_finite(model)


@pytest.mark.parametrize("name", ["bn.running_var", "bn.running_mean", "a.weight", "bn.bias"])
def test_inf_in_parameters_and_batchnorm_statistics_is_an_error(name):
    model = ClampedInput()
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        tensors[name][1] = float("inf")
    assert nonfinite_tensors(model) == {name: [1]}
    with pytest.raises(NonFiniteError, match=rf"{name} .*channel\(s\) 1"):
        check_finite(model)
