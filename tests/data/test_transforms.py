"""Pad-crop-flip augmentation: determinism under a seed, and what it does to pixels."""

from __future__ import annotations

import pytest
import torch

from prunekit.data import RandomCropFlip, ResizeCenterCrop, eval_transform, train_transform
from prunekit.data.transforms import default_padding
from prunekit.errors import ConfigError


def _images(n: int = 16, c: int = 3, size: int = 32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(c, size, size, generator=g) for _ in range(n)]


def test_same_seed_same_output() -> None:
    images = _images()
    a, b = RandomCropFlip(padding=4, seed=3), RandomCropFlip(padding=4, seed=3)
    for image in images:
        torch.testing.assert_close(a(image), b(image), rtol=0, atol=0)
    c = RandomCropFlip(padding=4, seed=4)
    a.reseed(3)
    assert any(not torch.equal(a(x), c(x)) for x in images)


def test_reseed_restarts_the_stream() -> None:
    images = _images()
    t = RandomCropFlip(padding=2, seed=11)
    first = [t(x) for x in images]
    t.reseed(11)
    assert all(torch.equal(x, y) for x, y in zip(first, (t(x) for x in images)))


def test_global_generator_when_unseeded() -> None:
    images = _images()
    t = RandomCropFlip(padding=4)
    torch.manual_seed(5)
    first = [t(x) for x in images]
    torch.manual_seed(5)
    assert all(torch.equal(x, y) for x, y in zip(first, (t(x) for x in images)))


def test_output_is_a_crop_of_the_zero_padded_image() -> None:
    image = torch.rand(1, 28, 28) + 1.0
    padded = torch.nn.functional.pad(image, (2, 2, 2, 2))  # padding is black (0) before normalisation
    t = RandomCropFlip(padding=2, flip_p=0.0, seed=0)
    offsets = set()
    for _ in range(50):
        out = t(image)
        matches = [(i, j) for i in range(5) for j in range(5) if torch.equal(out, padded[:, i : i + 28, j : j + 28])]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 10  # the offsets really vary


def test_flip_and_no_padding() -> None:
    image = torch.arange(12.0).view(1, 3, 4) / 12
    torch.testing.assert_close(RandomCropFlip(padding=0, flip_p=1.0)(image), image.flip(-1))
    torch.testing.assert_close(RandomCropFlip(padding=0, flip_p=0.0)(image), image)


def test_flips_about_half_the_time() -> None:
    image = torch.arange(16.0).view(1, 4, 4)
    t = RandomCropFlip(padding=0, seed=0)
    flips = sum(torch.equal(t(image), image.flip(-1)) for _ in range(400))
    assert 150 < flips < 250


def test_defaults_and_validation() -> None:
    assert default_padding(28) == 2 and default_padding(32) == 4 and default_padding(224) == 28
    assert train_transform(28).padding == 2 and train_transform(32, seed=1).padding == 4
    assert eval_transform() is None
    with pytest.raises(ConfigError, match="padding"):
        RandomCropFlip(padding=-1)
    with pytest.raises(ConfigError, match="flip_p"):
        RandomCropFlip(flip_p=1.5)
    with pytest.raises(ConfigError, match="C x H x W"):
        RandomCropFlip()(torch.zeros(2, 1, 4, 4))


def test_resize_center_crop() -> None:
    t = eval_transform(16)
    assert isinstance(t, ResizeCenterCrop)
    assert t(torch.rand(3, 40, 60)).shape == (3, 16, 16)
    assert t(torch.rand(3, 16, 30)).shape == (3, 16, 16)
    with pytest.raises(ConfigError, match="size"):
        ResizeCenterCrop(0)
