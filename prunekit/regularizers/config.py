"""``SparsifyConfig``: the ``sparsify:`` section of a prunekit schedule file.

    sparsify: {regularizer: group_lasso, strength: 5.0e-4, epochs: 3}

A frozen dataclass validated at construction, like :class:`~prunekit.config.PruneConfig` (which
holds it as its optional ``sparsify`` field); ``prunekit prune --schedule FILE`` runs it as a
``sparsify`` phase before the prune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunekit.errors import ConfigError, option_error
from prunekit.regularizers.base import REGULARIZERS, Regularizer, get_regularizer

__all__ = ["SparsifyConfig"]


def _fail(name: str, message: str) -> ConfigError:
    return option_error(name, f"{message}")


@dataclass(frozen=True)
class SparsifyConfig:
    """Sparsity training before the prune.

    Attributes:
        regularizer: a name in :data:`~prunekit.regularizers.REGULARIZERS`.
        strength: its coefficient (``None``: the regularizer's default).
        epochs: epochs of the sparsify phase.
        lr: its peak learning rate (``None``: the run's training LR).
        threshold: a channel norm under this counts as zero in ``history.csv``.
        options: other keyword options of the regularizer (GReg: ``delta``, ``interval``...).
    """

    regularizer: str = "group_lasso"
    strength: float | None = None
    epochs: int = 1
    lr: float | None = None
    threshold: float = 1e-2
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.regularizer not in REGULARIZERS:
            raise _fail("regularizer", REGULARIZERS.unknown_message(self.regularizer))
        for name in ("strength", "lr", "threshold"):
            value = getattr(self, name)
            if value is None and name != "threshold":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise _fail(name, f"must be a number >= 0, but got {value!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise _fail("epochs", f"must be an int >= 1, but got {self.epochs!r}")
        if not isinstance(self.options, dict) or not all(isinstance(k, str) for k in self.options):
            raise _fail("options", f"must be a mapping with string keys, but got {self.options!r}")
        # an unknown or bad option fails here, with the file's path (GReg's target comes later
        # from the prune's own, so a stand-in is enough to check the rest)
        self.build(**({"sparsity": 0.5} if self.regularizer == "greg" else {}))

    def build(self, **defaults: Any) -> Regularizer:
        """The regularizer; ``defaults`` fill options the config does not give."""
        options = {**defaults, **self.options}
        if self.strength is not None:
            options["strength"] = self.strength
        if self.regularizer == "greg" and {"sparsity", "target_macs"} <= set(options):
            options.pop("target_macs" if "sparsity" in self.options else "sparsity")
        try:
            return get_regularizer(self.regularizer, **options)
        except TypeError as exc:
            raise _fail("options", str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "regularizer": self.regularizer,
            "strength": self.strength,
            "epochs": self.epochs,
            "lr": self.lr,
            "threshold": self.threshold,
            "options": dict(self.options),
        }
