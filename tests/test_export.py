"""Export for users without prunekit: a pruned, saved and reloaded CIFAR ResNet-20 as ``.pt2`` and ONNX."""

from __future__ import annotations

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.errors import ConfigError, EquivalenceError, TraceError
from prunekit.export import export_onnx, export_program, verify_export
from prunekit.models import get_model
from tests.latency import fakes

ort = pytest.importorskip("onnxruntime", reason="ONNX checks need onnxruntime (pip install 'prunekit[export]')")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'prunekit[export]')")

KWARGS = {"num_classes": 10, "in_channels": 1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """ResNet-20 pruned by half, saved with its input shape, and loaded back from the folder."""
    torch.manual_seed(0)
    model, x = get_model("resnet20", **KWARGS).eval(), torch.randn(2, 1, 28, 28)
    report = prunekit.prune_(model, x, sparsity=0.5)
    path = tmp_path_factory.mktemp("export") / "r20"
    prunekit.save(
        model, path, reports=report, builder="resnet20", builder_kwargs=KWARGS, extra={"input_shape": [1, 1, 28, 28]}
    )
    loaded = prunekit.load(path).eval()
    return path, loaded, model, x, report


def test_export_both_ways_and_outputs_match(saved, tmp_path):
    _, loaded, model, x, _ = saved
    program = export_program(loaded, x, tmp_path / "m.pt2")
    onnx_file = export_onnx(loaded, x, tmp_path / "m.onnx")
    diffs = verify_export(loaded, x, program=program, onnx=onnx_file, batch_sizes=(1, 5))
    assert set(diffs) == {"pt2", "onnx"} and max(diffs.values()) < 1e-4
    # users load them without prunekit: the batch dim is dynamic in both
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input" and session.get_inputs()[0].shape[0] == "batch"
    x7 = torch.randn(7, 1, 28, 28)
    (out,) = session.run(None, {"input": x7.numpy()})
    with torch.no_grad():
        expected = model(x7)
        torch.testing.assert_close(torch.from_numpy(out), expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(torch.export.load(str(program)).module()(x7), expected)
    assert loaded.training is False and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt2"]


def test_a_mismatch_names_the_file(saved, tmp_path):
    _, loaded, _, x, _ = saved
    program = export_program(loaded, x, tmp_path / "m.pt2")
    changed = get_model("resnet20", **KWARGS).eval()  # unpruned: other shapes, other weights
    with pytest.raises(EquivalenceError, match="m.pt2"):
        verify_export(changed, x, program=program)
    with pytest.raises(ConfigError, match="nothere.onnx"):
        verify_export(loaded, x, onnx=tmp_path / "nothere.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(loaded, x, tmp_path / "m.onnx", opset=9)


def test_cli_export_both(saved, tmp_path, capsys):
    path, _, model, *_ = saved
    assert main(["export", "--model-dir", str(path), "--format", "both", "--out", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "onnx: outputs match" in out and "pt2: outputs match" in out
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(str(tmp_path / "m.pt2")).module()(x), model(x))


def test_cli_export_folds_batch_norms_first(saved, tmp_path, capsys):
    path, _, model, *_ = saved
    args = ["export", "--model-dir", str(path), "--format", "pt2", "--fold-batchnorm", "--out", str(tmp_path / "m.pt2")]
    assert main(args) == 0
    assert "pt2: outputs match" in capsys.readouterr().out
    program = torch.export.load(str(tmp_path / "m.pt2"))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not any("batch_norm" in op for op in ops)  # folded: no norm left to run
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), atol=1e-4, rtol=1e-4)


def test_cli_export_folds_removed_branches(tmp_path, monkeypatch, capsys):
    """A removed block exports as relu(x + c): no stand-in's empty tensor and no norm left to run."""
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    fakes.register()  # a simulated latency backend, so the allocation removes whole blocks
    torch.manual_seed(0)
    model, x = get_model("resnet20", **KWARGS).eval(), torch.randn(2, 1, 28, 28)
    options = dict(scope="global", latency_allocation=True, remove_branches=True, latency_backend="fake")
    report = prunekit.prune_(model, x, target_macs=0.4, **options)
    path = tmp_path / "r20"
    prunekit.save(
        model, path, reports=report, builder="resnet20", builder_kwargs=KWARGS, extra={"input_shape": [1, 1, 28, 28]}
    )
    ops = {}
    for flags in ([], ["--fold-batchnorm", "--fold-constants"]):
        out = tmp_path / f"m{len(flags)}.pt2"
        assert main(["export", "--model-dir", str(path), "--format", "pt2", *flags, "--out", str(out)]) == 0
        program = torch.export.load(str(out))
        ops[len(flags)] = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), model(x), atol=1e-4, rtol=1e-4)
    assert any("new_zeros" in op for op in ops[0]) and not any("new_zeros" in op for op in ops[2])
    assert len(ops[2]) < len(ops[0])
    assert "pt2: outputs match" in capsys.readouterr().out


def test_cli_export_errors(saved, tmp_path, capsys):
    path, loaded, _, _, report = saved
    assert main(["export", "--model-dir", str(tmp_path / "nothere"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--model-dir" in capsys.readouterr().err
    bare = tmp_path / "bare"
    prunekit.save(loaded, bare, reports=report, builder="resnet20", builder_kwargs=KWARGS)
    assert main(["export", "--model-dir", str(bare), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]) == 2
    assert "--input-shape is required" in capsys.readouterr().err
    argv = ["export", "--model-dir", str(bare), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]
    assert main(argv + ["--input-shape", "1,1,28,28"]) == 0 and (tmp_path / "m.pt2").is_file()


class FixedBatch(torch.nn.Module):
    """Flattens with a batch size written in the code: only a static-batch export is possible."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(2, 12))


def test_static_batch_for_models_that_fix_it(tmp_path):
    model, x = FixedBatch().eval(), torch.randn(2, 3, 4)
    with pytest.raises(TraceError, match="dynamic_batch=False"):
        export_program(model, x, tmp_path / "m.pt2")
    program = export_program(model, x, tmp_path / "m.pt2", dynamic_batch=False)
    assert verify_export(model, x, program=program, batch_sizes=())["pt2"] < 1e-6
