"""Seeded loaders: same seed, same batches and augmentations, with and without workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunekit.data import ImageArrayDataset, RandomCropFlip, make_loader, make_loaders
from prunekit.errors import ConfigError


def _tiny(n: int = 64) -> ImageArrayDataset:
    rng = np.random.default_rng(0)
    return ImageArrayDataset(
        rng.integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8),
        np.arange(n) % 4,
        classes=["a", "b", "c", "d"],
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        transform=RandomCropFlip(padding=2),
    )


def _epochs(loader, count: int = 2) -> list[torch.Tensor]:
    return [torch.cat([x for x, _ in loader]) for _ in range(count)]


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_batches(workers: int) -> None:
    a = _epochs(make_loader(_tiny(), batch_size=16, shuffle=True, workers=workers, seed=7))
    b = _epochs(make_loader(_tiny(), batch_size=16, shuffle=True, workers=workers, seed=7))
    c = _epochs(make_loader(_tiny(), batch_size=16, shuffle=True, workers=workers, seed=8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # a new epoch reshuffles and re-augments


def test_make_loaders_default_dataset() -> None:
    train, test = make_loaders(batch_size=500, eval_batch_size=1000, seed=0)
    assert len(train.dataset) == 10000 and len(test.dataset) == 2000
    assert test.dataset.transform is None and isinstance(train.dataset.transform, RandomCropFlip)
    x, y = next(iter(test))
    assert x.shape == (1000, 1, 28, 28) and y.dtype == torch.int64
    assert torch.equal(y, test.dataset.targets[:1000])  # the test loader keeps file order


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(_tiny(), batch_size=0)
    with pytest.raises(ConfigError, match="workers"):
        make_loader(_tiny(), workers=-1)
