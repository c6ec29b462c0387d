"""Optimizers, the LR schedule as a function of the step, and option validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.pipeline import StepLR, TrainOptions, build_optimizer, lr_factor
from prunekit.pipeline.optim import build_recipe_schedulers, rebuild_recipe_schedulers
from prunekit.schedules.recipe import LRSchedulerSpec


def test_cosine_with_warmup():
    o = TrainOptions(epochs=4, lr_schedule="cosine", warmup_epochs=1)
    f = [lr_factor(s, steps_per_epoch=10, options=o) for s in range(40)]
    assert f[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert f[10] == pytest.approx(1.0)
    assert f[25] == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 30)))
    assert f == sorted(f[:10]) + sorted(f[10:], reverse=True)


def test_step_schedule_and_constant():
    o = TrainOptions(epochs=6, lr_schedule="step", milestones=(2, 4), gamma=0.5)
    assert [lr_factor(e * 3, steps_per_epoch=3, options=o) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert lr_factor(17, steps_per_epoch=3, options=TrainOptions(lr_schedule="constant")) == 1.0


def test_step_lr_sets_every_group():
    model = nn.Linear(3, 2)
    o = TrainOptions(epochs=2, lr=0.4, lr_schedule="cosine")
    opt = build_optimizer(model, o)
    assert StepLR(o, steps_per_epoch=5).apply(opt, 5) == pytest.approx(0.2)
    assert all(g["lr"] == pytest.approx(0.2) for g in opt.param_groups)


def test_build_optimizer_kinds():
    model = nn.Linear(3, 2)
    sgd = build_optimizer(model, TrainOptions(nesterov=True, momentum=0.8, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    adamw = build_optimizer(model, TrainOptions(optimizer="adamw", lr=1e-3, weight_decay=0.05))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.05


@pytest.mark.filterwarnings("ignore:Detected call of .lr_scheduler.step")
def test_recipe_schedulers_move_to_a_new_optimizer_at_the_same_position():
    specs = [LRSchedulerSpec("MultiStepLR", {"milestones": [1, 2], "gamma": 0.1}, epochs=(0, 1, 2))]
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, TrainOptions(lr=1.0))
    (sched,) = build_recipe_schedulers(opt, specs)
    sched.step()
    sched.step()
    new_opt = build_optimizer(nn.Linear(3, 2), TrainOptions(lr=1.0))
    (moved,) = rebuild_recipe_schedulers(new_opt, specs, [sched.state_dict()])
    assert new_opt.param_groups[0]["lr"] == pytest.approx(0.01)
    moved.step()
    sched.step()
    assert new_opt.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    with pytest.raises(ConfigError, match=r"lr_schedulers\[0\].name"):
        build_recipe_schedulers(opt, [LRSchedulerSpec("NoSuchLR", {}, epochs=())])


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(optimizer="adam"), "optimizer: must be one of sgd, adamw"),
        (dict(lr=0), "lr: must be in (0"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(nesterov=True, momentum=0.0), "nesterov"),
        (dict(milestones=[3]), "milestones"),
        (dict(max_batches=0), "max_batches"),
        (dict(distill_alpha=1.5), "distill_alpha"),
        (dict(epochs=-1), "epochs"),
    ],
)
def test_bad_options_name_the_field(kwargs, needle):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        TrainOptions(**kwargs)


def test_options_round_trip():
    o = TrainOptions(milestones=(3, 5), distill=True)
    assert TrainOptions.from_dict(o.to_dict()) == o
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainOptions.from_dict({"lrr": 0.1})
