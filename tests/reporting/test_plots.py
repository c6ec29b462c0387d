"""The PNG plots: valid files when there is something to draw, nothing when there is not."""

from __future__ import annotations

import pytest

from prunekit.reporting import compare_layers
from prunekit.reporting.plots import plot_accuracy_vs_macs, plot_channels, plot_history

from .conftest import PNG_SIGNATURE

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'prunekit[report]')")


def test_plots_are_png_files(pruned, tmp_path):
    rows = compare_layers(pruned.before, pruned.after, pruned.x)
    history = {"epoch": [1.0, 2.0], "phase": ["train", "finetune"], "train_loss": [2.0, None], "val_top1": [0.1, 0.2]}
    points = [
        {"label": "before", "macs": 4e7, "accuracy": 0.9},
        {"label": "after_finetune", "macs": 2e7, "accuracy": 0.8},
    ]
    for path in (
        plot_channels(rows, tmp_path / "c.png"),
        plot_history(history, tmp_path / "h.png"),
        plot_accuracy_vs_macs(points, tmp_path / "a.png"),
    ):
        assert path is not None and path.read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.png", "h.png"]  # no temp files left


def test_nothing_to_draw(tmp_path):
    assert plot_channels([], tmp_path / "c.png") is None
    assert plot_history({"epoch": [1.0], "seconds": [3.0], "lr": [None]}, tmp_path / "h.png") is None
    assert plot_accuracy_vs_macs([], tmp_path / "a.png") is None
    assert not list(tmp_path.iterdir())
