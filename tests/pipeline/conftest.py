"""Fixtures for the pipeline tests: the embedded Fashion-MNIST loaders, small batches, one thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from prunekit.data import make_loaders
from prunekit.pipeline import ModelSource


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def loaders():  # type: ignore[no-untyped-def]
    """Fresh loaders per test (the training set's augmentation is reseeded by the run)."""
    return make_loaders(batch_size=16, seed=0)


@pytest.fixture
def source() -> ModelSource:
    return ModelSource("resnet20", num_classes=10, in_channels=1)
