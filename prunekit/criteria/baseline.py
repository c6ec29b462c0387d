"""A random baseline criterion: any criterion worth using should beat it."""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from prunekit.criteria.base import CRITERIA, Criterion
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group

__all__ = ["RandomCriterion"]


@CRITERIA.register("random", description="uniform random scores from a seeded generator (a baseline)")
class RandomCriterion(Criterion):
    """``score_c ~ U[0, 1)`` drawn from ``numpy.random.default_rng(seed)``.

    The generator is created once, so successive groups get different draws and a new instance
    with the same seed reproduces the whole sequence.

    Args:
        seed: seed of the generator.
        reduction: accepted for a uniform interface; unused.
    """

    name = "random"

    def __init__(self, *, seed: int = 0, reduction: str = "sum") -> None:
        super().__init__(reduction=reduction)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an int, but got {seed!r}", module="seed")
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        return self.rng.random(group.size)
