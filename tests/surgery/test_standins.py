"""The stand-ins of a removed branch compute what the layer computes with its channels zeroed."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.errors import SurgeryError
from prunekit.surgery.standins import ConstantOutput, Emptied, is_standin, standin_for

NONE = torch.zeros(0, dtype=torch.long)


@settings(max_examples=40, deadline=None)
@given(
    dims=st.sampled_from([1, 2, 3]),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"])),
    dilation=st.integers(1, 2),
    size=st.integers(7, 12),
    bias=st.booleans(),
    batched=st.booleans(),
)
def test_conv_standins_match_the_zeroed_conv(dims, k, stride, pad, dilation, size, bias, batched):
    if pad == "same":
        stride = 1  # PyTorch refuses padding="same" with strides
    conv = [nn.Conv1d, nn.Conv2d, nn.Conv3d][dims - 1](
        4, 5, k, stride=stride, padding=pad, dilation=dilation, bias=bias
    )
    shape = ((2,) if batched else ()) + (4,) + (size,) * dims
    x = torch.randn(shape)
    with torch.no_grad():
        want = conv(torch.zeros_like(x))  # every input channel zeroed: the bias everywhere
        constant = standin_for("c", conv, {"in": NONE})
        got = constant(x)
        assert isinstance(constant, ConstantOutput) and got.shape == want.shape
        torch.testing.assert_close(got, want)
        emptied = standin_for("c", conv, {"out": NONE, "in": NONE})
        empty = emptied(x)
    assert isinstance(emptied, Emptied) and empty.numel() == 0
    cdim = len(shape) - dims - 1
    assert empty.shape[:cdim] == want.shape[:cdim] and empty.shape[cdim + 1 :] == want.shape[cdim + 1 :]


def test_a_constant_output_keeps_the_kept_outputs_bias_and_is_a_fresh_tensor():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    keep_out = torch.tensor([0, 2, 5])
    stand = standin_for("c", conv, {"in": NONE, "out": keep_out})
    assert stand.out_channels == 3 and isinstance(stand.bias, nn.Parameter) and stand.bias.requires_grad
    y = stand(torch.randn(1, 4, 8, 8))
    torch.testing.assert_close(y[0, :, 3, 3], conv.bias.detach()[keep_out])
    y += 1  # a caller may add in place (torchvision's `out += identity`): the bias is untouched
    torch.testing.assert_close(stand.bias.detach(), conv.bias.detach()[keep_out])
    assert stand(torch.randn(1, 4, 8, 8))[0, 0, 0, 0] == conv.bias[0]


def test_a_constant_output_trains_its_bias():
    stand = standin_for("c", nn.Linear(4, 3), {"in": NONE})
    stand(torch.randn(2, 4)).sum().backward()
    assert stand.bias.grad is not None and torch.all(stand.bias.grad == 2)


def test_linear_and_batch_norm_standins():
    lin = nn.Linear(4, 3)
    x = torch.randn(2, 5, 4)
    assert standin_for("l", lin, {"out": NONE})(x).shape == (2, 5, 0)
    torch.testing.assert_close(standin_for("l", lin, {"in": NONE})(x), lin(torch.zeros_like(x)))
    bn = nn.BatchNorm2d(4)
    assert standin_for("b", bn, {"out": NONE})(torch.zeros(2, 0, 5, 5)).shape == (2, 0, 5, 5)
    assert standin_for("b", nn.BatchNorm1d(4), {"out": NONE})(torch.zeros(3, 0)).shape == (3, 0)


def test_other_layers_are_refused_with_their_name():
    with pytest.raises(SurgeryError, match="'block.gn'.*GroupNorm"):
        standin_for("block.gn", nn.GroupNorm(2, 4), {"out": NONE})
    with pytest.raises(SurgeryError, match="transposed|ConvTranspose2d"):
        standin_for("up", nn.ConvTranspose2d(4, 4, 2), {"in": NONE})


def test_emptied_returns_one_empty_tensor_per_shape_and_mode():
    stand = standin_for("c", nn.Conv2d(4, 4, 3, stride=2, padding=1), {"out": NONE})
    x = torch.randn(1, 4, 9, 9)
    a, b = stand(x), stand(x)
    assert a is b and a.shape == (1, 0, 5, 5)
    with torch.inference_mode():
        c = stand(x)
    assert c is not a and c.is_inference() and not stand(x).is_inference()  # never an inference tensor to autograd
    assert stand(torch.randn(2, 4, 9, 9)).shape == (2, 0, 5, 5)


def test_standins_copy_and_pickle_without_their_caches():
    stand = standin_for("c", nn.Conv2d(4, 4, 3), {"out": NONE})
    stand(torch.randn(1, 4, 6, 6))
    for clone in (copy.deepcopy(stand), pickle.loads(pickle.dumps(stand))):
        assert clone._empty == {} and clone(torch.randn(1, 4, 6, 6)).shape == (1, 0, 4, 4)
    assert is_standin(stand) and not is_standin(nn.Conv2d(1, 1, 1))
