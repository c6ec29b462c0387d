"""ImageArrayDataset: the shared in-memory type, its conventions and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunekit.data import ImageArrayDataset
from prunekit.errors import ConfigError


def _make(images=None, labels=None, **kwargs) -> ImageArrayDataset:
    images = np.zeros((4, 2, 5, 5), np.uint8) if images is None else images
    labels = np.arange(4) % 2 if labels is None else labels
    options = {"classes": ["a", "b"], "mean": (0.5, 0.5), "std": (0.5, 0.5)} | kwargs
    return ImageArrayDataset(images, labels, **options)


def test_item_convention() -> None:
    images = np.full((2, 2, 3, 3), 255, np.uint8)
    seen = []
    ds = _make(images, np.array([0, 1]), transform=lambda x: seen.append(x.max().item()) or x * 0)
    image, label = ds[1]
    assert seen == [1.0]  # the transform sees [0, 1] pixels
    torch.testing.assert_close(image, torch.full((2, 3, 3), -1.0))  # (0 - 0.5) / 0.5 after it
    assert label == 1 and isinstance(label, int)
    assert (ds.in_channels, ds.image_size, ds.num_classes) == (2, (3, 3), 2)
    assert "size=2" in repr(ds)


def test_grey_images_get_a_channel() -> None:
    ds = _make(np.zeros((4, 5, 5), np.uint8), mean=(0.5,), std=(0.5,))
    assert ds[0][0].shape == (1, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": np.zeros((4, 2, 5, 5), np.float32)}, "uint8"),
        ({"images": np.zeros((4, 5), np.uint8)}, "N x H x W"),
        ({"labels": np.arange(3)}, "one label per image"),
        ({"labels": np.array([0, 1, 2, 0])}, r"labels must be in \[0, 2\)"),
        ({"labels": np.zeros(4, np.float32)}, "integers"),
        ({"mean": (0.5,)}, "mean and std need 2 values"),
        ({"std": (0.5, 0.0)}, "std > 0"),
    ],
)
def test_validation(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _make(**kwargs)
