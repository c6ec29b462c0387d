"""``prunekit graph`` and ``prunekit list``: what the tracer found, and what is registered."""

from __future__ import annotations

import pytest

from prunekit.cli import main


def test_graph_of_a_prunekit_model(capsys):
    assert main(["graph", "resnet20", "--size", "32", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DependencyGraph(CifarResNet: 13 groups, 12 prunable)")
    assert "layer1.0.conv1:out" in out


def test_graph_takes_a_bare_torchvision_name(capsys):
    assert main(["graph", "resnet18", "--size", "32"]) == 0
    assert capsys.readouterr().out.startswith("DependencyGraph(ResNet:")


def test_graph_of_an_unknown_model_exits_2(capsys):
    assert main(["graph", "resnet_nosuch", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "resnet_nosuch" in err and "Choices" in err


@pytest.mark.parametrize("what, expected", [("criteria", "l1"), ("models", "resnet56"), ("schedules", "agp"),
                                            ("rules", "Conv2d")])  # fmt: skip
def test_list(capsys, what, expected):
    assert main(["list", what]) == 0
    assert expected in capsys.readouterr().out
