"""The fx tracer's own ``call_module`` against fx's: the same graph, names and module stacks."""

from __future__ import annotations

import pytest
import torch
import torch.fx as fx
import torch.nn as nn
import torchvision
from zoo import ZOO

from prunekit.graph.tracer import PrunekitTracer

MAKERS = dict(ZOO)


class _FxCallModule(PrunekitTracer):
    """The same tracer with fx's ``call_module`` (scope copied through ScopeContextManager)."""

    def _call_module(self, m, forward, args, kwargs):  # noqa: ANN001, ANN202
        return fx.Tracer.call_module(self, m, forward, args, kwargs)


def _signature(graph: fx.Graph) -> list[tuple]:
    return [(n.name, n.op, str(n.target), str(n.args), dict(n.meta.get("nn_module_stack") or {})) for n in graph.nodes]


class _Reused(nn.Module):
    """A module called twice (fx numbers the second call ``name@1`` in the stack)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.block(x)) + x.mean()


@pytest.mark.parametrize(
    "make",
    [
        _Reused,
        lambda: torchvision.models.regnet_y_400mf(),
        lambda: torchvision.models.mobilenet_v3_small(),
        *[MAKERS[name] for name in list(MAKERS)[:6]],
    ],
)
def test_call_module_builds_the_graph_fx_builds(make) -> None:  # noqa: ANN001
    model = make().eval()
    ours, theirs = PrunekitTracer().trace(model), _FxCallModule().trace(model)
    assert _signature(ours) == _signature(theirs)


def test_a_failing_module_restores_the_scope() -> None:
    class Bad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("no")

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bad = Bad()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bad(x)

    tracer = PrunekitTracer()
    with pytest.raises(ValueError, match="no") as info:
        tracer.trace(Outer())
    assert tracer.scope.module_path == "" and info.value._prunekit_module == ("bad", "Bad")
