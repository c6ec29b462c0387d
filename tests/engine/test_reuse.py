"""Graph reuse across cuts: the derived graph of a pruned model equals a fresh trace of it, and
a schedule that reuses it prunes exactly as one that traces at every step."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
from zoo import ZOO

import prunekit
from prunekit.engine import pruned_graph, shape_key
from prunekit.prune import prune_step_
from prunekit.schedules.scheduler import PruningScheduler
from tests.engine.signature import group_signature

MAKERS = dict(ZOO)
ZOO_IDS = [name for name, _ in ZOO]


@pytest.mark.parametrize("name", ZOO_IDS)
def test_derived_graph_equals_a_fresh_trace(name: str) -> None:
    model = MAKERS[name]()
    inputs = model.example_inputs()
    graph = None
    for sparsity in (0.3, 0.3):
        try:
            _, graph = prune_step_(model, inputs, sparsity=sparsity, graph=graph)
        except prunekit.errors.NoPrunableGroupError:
            pytest.skip("nothing prunable")
        if graph is None:  # a rule reads some layer differently now: the caller traces again
            graph = prunekit.DependencyGraph(model, inputs)
        assert group_signature(graph) == group_signature(prunekit.DependencyGraph(model, inputs))
        assert {k: len(v) for k, v in graph.member_roots().items()} == {
            k: len(v) for k, v in prunekit.DependencyGraph(model, inputs).member_roots().items()
        }


def test_no_removal_returns_the_same_graph() -> None:
    model = MAKERS["ResidualNet"]()
    graph = prunekit.DependencyGraph(model, model.example_inputs())
    plan = prunekit.surgery.PrunePlan(removed={})
    assert pruned_graph(graph, plan) is graph


@pytest.mark.parametrize("mode", ["physical", "masked"])
@pytest.mark.parametrize("name", ["ResidualNet", "DenseNet", "GroupedNet", "ConcatChunkNet"])
def test_schedule_traces_once_and_matches_retracing(name: str, mode: str) -> None:
    options = dict(initial=0.0, final=0.6, start=0, end=10, frequency=1)
    reused, retraced = MAKERS[name](), MAKERS[name]()
    inputs = reused.example_inputs()
    calls = []
    real_init = prunekit.DependencyGraph.__init__

    def counting_init(self, *args, **kwargs):
        calls.append(1)
        real_init(self, *args, **kwargs)

    sched = PruningScheduler("agp", options=options, mode=mode)
    with mock.patch.object(prunekit.DependencyGraph, "__init__", counting_init):
        for step in range(11):
            sched.step(reused, inputs, step)
    # GroupedNet: the cut that leaves its grouped conv one input per group makes it depthwise
    assert len(calls) == (2 if name == "GroupedNet" and mode == "physical" else 1)
    fresh = PruningScheduler("agp", options=options, mode=mode)
    for step in range(11):
        fresh._graph = None  # force a trace at every step
        fresh.step(retraced, inputs, step)
    if mode == "masked":
        sched.finalize(reused)
        fresh.finalize(retraced)
    assert {k: v.shape for k, v in reused.state_dict().items()} == {
        k: v.shape for k, v in retraced.state_dict().items()
    }
    for a, b in zip(reused.state_dict().values(), retraced.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_shape_key_sees_a_reshaped_model() -> None:
    model = MAKERS["ResidualNet"]()
    inputs = model.example_inputs()
    before = shape_key(model, inputs)
    assert shape_key(copy.deepcopy(model), inputs) != before  # another model object
    prunekit.prune_(model, inputs, sparsity=0.5)
    assert shape_key(model, inputs) != before
