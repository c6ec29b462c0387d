"""``prunekit graph --html``: the page draws every layer with its group's colour, marks locked
groups with their reason, and renders in a real browser (headless Chromium, when installed)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

from prunekit.cli import main
from prunekit.graph import DependencyGraph
from prunekit.reporting.graph_view import LOCKED_EDGE, _colour, graph_html, write_graph_html


class Residual(nn.Module):
    """A stem, one residual block (add) and a head whose output channels are locked."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return self.head(y + self.conv2(torch.relu(self.conv1(y))))


def test_page_lists_every_layer_group_and_reason(tmp_path):
    graph = DependencyGraph(Residual().eval(), torch.randn(1, 3, 8, 8))
    page = graph_html(graph, title="residual")
    for name in ("stem", "conv1", "conv2", "head"):
        assert f">{name} (Conv2d)<" in page
    locked = [g for g in graph.groups if not g.prunable]
    assert locked and "reaches the model output" in page
    residual = graph.group_of("stem")
    assert residual is not None and "add" in residual.couplings
    assert page.count(f'fill="{_colour(residual.id)}"') >= 2  # stem and conv2 share the colour
    assert write_graph_html(graph, tmp_path / "g.html", title="residual").read_text() == page


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "resnet20.html"
    assert main(["graph", "resnet20", "--size", "32", "--num-classes", "10", "--html", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and "layer3.2.conv2 (Conv2d)" in out.read_text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_page_renders_in_chromium(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    graph = DependencyGraph(Residual().eval(), torch.randn(1, 3, 8, 8))
    page = write_graph_html(graph, tmp_path / "g.html")
    shot = tmp_path / "g.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=900,500"]
    subprocess.run([*cmd, page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = (image.imread(shot)[..., :3] * 255).round().astype(int)

    def present(hex_colour: str) -> bool:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        return bool((np.abs(pixels - rgb).sum(-1) <= 6).any())

    residual = graph.group_of("stem")
    assert residual is not None and present(_colour(residual.id))  # a group's colour is drawn
    assert present(LOCKED_EDGE)  # the locked head's red border is drawn
