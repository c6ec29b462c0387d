"""Fixtures for the pipeline tests: the embedded Fashion-MNIST loaders with small batches.

(tests/conftest.py already runs everything on one intra-op thread.)
"""

from __future__ import annotations

import pytest

from prunekit.data import make_loaders
from prunekit.pipeline import ModelSource


@pytest.fixture
def loaders():  # type: ignore[no-untyped-def]
    """Fresh loaders per test (the training set's augmentation is reseeded by the run)."""
    return make_loaders(batch_size=16, seed=0)


@pytest.fixture
def source() -> ModelSource:
    return ModelSource("resnet20", num_classes=10, in_channels=1)
