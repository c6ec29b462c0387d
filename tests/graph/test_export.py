"""Pruned models stay ordinary modules: script, export, ONNX, save/load, train."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torchvision

import prunekit
from tests.graph.test_torchvision import randomize


@pytest.fixture(scope="module")
def pruned_pair():
    torch.manual_seed(0)
    model = randomize(torchvision.models.resnet18(num_classes=10))
    x = torch.randn(2, 3, 64, 64)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    return original, model.eval(), x, report


def test_types_unchanged(pruned_pair):
    original, model, _, _ = pruned_pair
    assert [type(m) for m in original.modules()] == [type(m) for m in model.modules()]
    assert model.layer1[0].conv1.out_channels == 32 and model.layer1[0].bn1.num_features == 32
    assert model.fc.in_features == 256


def test_torchscript(pruned_pair):
    _, model, x, _ = pruned_pair
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))


def test_torch_export(pruned_pair):
    _, model, x, _ = pruned_pair
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), model(x))


def test_onnx_runtime_matches(pruned_pair):
    ort = pytest.importorskip("onnxruntime")
    _, model, x, _ = pruned_pair
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), model(x), atol=1e-4, rtol=1e-4)


def test_save_load_state_dict(pruned_pair, tmp_path):
    _, model, x, _ = pruned_pair
    torch.save(model.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    clone = copy.deepcopy(model)
    clone.load_state_dict(state)
    torch.testing.assert_close(clone(x), model(x))


def test_training_step_after_pruning(pruned_pair):
    _, model, x, _ = pruned_pair
    model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # a new optimizer: state is not kept
    loss = model(x).logsumexp(1).mean()
    loss.backward()
    opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_masked_mode_matches_thinning():
    torch.manual_seed(0)
    model = randomize(torchvision.models.mobilenet_v2(num_classes=10))
    x = torch.randn(2, 3, 32, 32)
    masks = prunekit.mask_(model, x, sparsity=0.5)
    assert 0.2 < masks.sparsity() < 0.9
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    masked_out = model(x)
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes  # shapes kept
    masks.thin_(model)
    torch.testing.assert_close(model(x), masked_out, atol=1e-5, rtol=1e-5)
