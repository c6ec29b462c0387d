"""``TrainOptions``: how one phase of a run trains (optimizer, LR schedule, loss, limits).

A frozen dataclass validated at construction, like :class:`~prunekit.config.PruneConfig`: a bad
value raises :class:`~prunekit.errors.ConfigError` whose message starts with the field name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from prunekit.errors import ConfigError, option_error

__all__ = ["TrainOptions", "OPTIMIZERS", "LR_SCHEDULES"]

OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("cosine", "step", "constant")


def _fail(name: str, message: str) -> ConfigError:
    return option_error(name, message)


def _number(name: str, value: object, *, low: float, high: float | None = None, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, f"must be a number, but got {value!r}")
    if not math.isfinite(value):  # NaN passes every comparison below, inf every open bound
        raise _fail(name, f"must be a finite number, but got {value!r}")
    bad_low = value <= low if low_open else value < low
    if bad_low or (high is not None and value > high):
        bounds = (
            f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{']' if high is not None else ')'}"
        )
        raise _fail(name, f"must be in {bounds}, but got {value!r}")


def _int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, f"must be an int >= {minimum}, but got {value!r}")


@dataclass(frozen=True)
class TrainOptions:
    """Options of one training phase (``train``, ``prune`` or ``finetune``).

    Attributes:
        epochs: epochs of the phase (a prune phase runs at least the recipe's ``num_epochs``).
        optimizer: "sgd" (momentum, optional Nesterov) or "adamw" (Loshchilov & Hutter 2019).
        lr: the peak learning rate.
        momentum, nesterov: SGD only.
        weight_decay: L2 penalty (SGD) or decoupled weight decay (AdamW).
        lr_schedule: "cosine" (Loshchilov & Hutter 2017, to 0 at the end of the phase), "step"
            (times ``gamma`` at each epoch in ``milestones``) or "constant".
        warmup_epochs: linear warm-up from ``lr / (warmup steps)`` to ``lr``, per batch.
        milestones, gamma: for "step".
        label_smoothing: Szegedy et al. 2016, passed to ``cross_entropy``.
        amp: mixed precision (``torch.autocast`` float16 + ``GradScaler``) when on CUDA; ignored
            on CPU, which trains in float32.
        max_batches: stop each training epoch after this many batches (tests, smoke runs).
        eval_batches: evaluate on at most this many batches.
        distill: knowledge distillation from the model as it was before pruning (fine-tuning).
        distill_alpha: weight of the distillation term (``1 - alpha`` goes to cross-entropy).
        distill_temperature: softmax temperature ``T`` of the distillation term.
    """

    epochs: int = 1
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    warmup_epochs: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    label_smoothing: float = 0.0
    amp: bool = True
    max_batches: int | None = None
    eval_batches: int | None = None
    distill: bool = False
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0

    def __post_init__(self) -> None:
        _int("epochs", self.epochs, 0)
        if self.optimizer not in OPTIMIZERS:
            raise _fail("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, but got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise _fail("lr_schedule", f"must be one of {', '.join(LR_SCHEDULES)}, but got {self.lr_schedule!r}")
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("momentum", self.momentum, low=0.0, high=1.0)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("warmup_epochs", self.warmup_epochs, low=0.0)
        _number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        _number("label_smoothing", self.label_smoothing, low=0.0, high=1.0)
        _number("distill_alpha", self.distill_alpha, low=0.0, high=1.0)
        _number("distill_temperature", self.distill_temperature, low=0.0, low_open=True)
        for name in ("nesterov", "amp", "distill"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, f"must be true or false, but got {getattr(self, name)!r}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise _fail("nesterov", "needs optimizer 'sgd' with momentum > 0")
        if not isinstance(self.milestones, tuple) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in self.milestones
        ):
            raise _fail("milestones", f"must be a tuple of positive epoch numbers, but got {self.milestones!r}")
        for name in ("max_batches", "eval_batches"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for checkpoints and the resolved config)."""
        out = asdict(self)
        out["milestones"] = list(self.milestones)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"train options: unknown keys {sorted(unknown)}", module="train")
        data = dict(data)
        if "milestones" in data:
            data["milestones"] = tuple(data["milestones"])
        return cls(**data)
