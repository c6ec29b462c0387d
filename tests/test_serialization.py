"""save / load of pruned models: weights plus a versioned JSON, replayed on the original builder."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

import prunekit
from prunekit.errors import ConfigError


def _builder(**kw):
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v2(num_classes=5, **kw).eval()


def test_round_trip_after_two_prunes(tmp_path):
    model, x = _builder(), torch.randn(2, 3, 32, 32)
    r1 = prunekit.prune_(model, x, sparsity=0.3)
    r2 = prunekit.prune_(model, x, sparsity=0.5)
    prunekit.save(model, tmp_path / "m", reports=[r1, r2], builder="torchvision:mobilenet_v2", builder_kwargs={})
    loaded = prunekit.load(tmp_path / "m", _builder)
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))
    spec = json.loads((tmp_path / "m" / "prunekit.json").read_text())
    assert spec["version"] == 1 and spec["builder"] == "torchvision:mobilenet_v2"
    # composed indices point into the ORIGINAL dims
    first = spec["layers"]["features.1.conv.0.0"]["out"]
    assert max(first) < 32 and first == sorted(first)


def test_missing_layer_is_a_clear_error(tmp_path):
    model, x = _builder(), torch.randn(2, 3, 32, 32)
    report = prunekit.prune_(model, x, sparsity=0.5)
    prunekit.save(model, tmp_path / "m", reports=report)
    spec_path = tmp_path / "m" / "prunekit.json"
    spec = json.loads(spec_path.read_text())
    spec["layers"]["features.99.conv"] = {"out": [0]}
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match="features.99.conv"):
        prunekit.load(tmp_path / "m", _builder)


def test_shape_mismatch_is_a_clear_error(tmp_path):
    model, x = _builder(), torch.randn(2, 3, 32, 32)
    report = prunekit.prune_(model, x, sparsity=0.5)
    prunekit.save(model, tmp_path / "m", reports=report)
    with pytest.raises(ConfigError, match="classifier.1.weight"):
        prunekit.load(tmp_path / "m", lambda: torchvision.models.mobilenet_v2(num_classes=7))


def test_not_a_prunekit_folder(tmp_path):
    with pytest.raises(ConfigError, match="prunekit.save"):
        prunekit.load(tmp_path, _builder)


def test_load_with_the_saved_builder_name(tmp_path):
    from prunekit.models import get_model

    kwargs = {"num_classes": 10, "in_channels": 1}
    torch.manual_seed(0)
    model, x = get_model("resnet20", **kwargs).eval(), torch.randn(2, 1, 28, 28)
    report = prunekit.prune_(model, x, sparsity=0.5)
    prunekit.save(model, tmp_path / "r20", reports=report, builder="resnet20", builder_kwargs=kwargs)
    loaded = prunekit.load(tmp_path / "r20")
    assert loaded.layer1[0].conv1.out_channels == 8
    torch.testing.assert_close(loaded.eval()(x), model(x))
