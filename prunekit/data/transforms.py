"""Tensor transforms for small-image training: pad-and-crop plus horizontal flip.

The standard CIFAR augmentation of He et al. 2016 ("Deep Residual Learning for Image
Recognition", sec. 4.2): pad 4 pixels on each side, take a random 32x32 crop, flip horizontally
with probability 0.5. For 28x28 images (Fashion-MNIST) the padding is 2.

Transforms work on float ``C x H x W`` tensors in ``[0, 1]`` (before normalisation, see
:mod:`prunekit.data.arrays`), so zero padding is black, as in torchvision's PIL recipe.

Randomness comes from the transform's own :class:`torch.Generator` when it has one (``seed=`` or
:meth:`RandomCropFlip.reseed`), else from torch's global generator; a seeded transform gives the
same sequence of crops and flips on every run. :func:`prunekit.data.make_loader` reseeds it per
DataLoader worker.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prunekit.errors import ConfigError

__all__ = ["RandomCropFlip", "ResizeCenterCrop", "default_padding", "train_transform", "eval_transform"]


def default_padding(image_size: int) -> int:
    """Crop padding for square images of side ``image_size``: 2 up to 28, 4 up to 64, else size/8."""
    if image_size <= 28:
        return 2
    if image_size <= 64:
        return 4
    return image_size // 8


class RandomCropFlip:
    """Pads by ``padding`` (with ``fill``), crops back to the input size at a random offset, and
    flips horizontally with probability ``flip_p``.

    Args:
        padding: pixels added on each side before cropping (>= 0).
        flip_p: probability of a horizontal flip, in ``[0, 1]``.
        fill: value of the padded pixels (0 = black in ``[0, 1]`` images).
        seed: seeds a private generator; ``None`` draws from torch's global generator.
    """

    def __init__(self, *, padding: int = 4, flip_p: float = 0.5, fill: float = 0.0, seed: int | None = None) -> None:
        if not isinstance(padding, int) or padding < 0:
            raise ConfigError(f"padding must be an int >= 0, but got {padding!r}", module="padding")
        if not 0.0 <= flip_p <= 1.0:
            raise ConfigError(f"flip_p must be in [0, 1], but got {flip_p!r}", module="flip_p")
        self.padding = padding
        self.flip_p = float(flip_p)
        self.fill = float(fill)
        self.generator: torch.Generator | None = None
        if seed is not None:
            self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restarts the private generator from ``seed`` (creating it if needed)."""
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, image: Tensor) -> Tensor:
        if image.dim() != 3:
            raise ConfigError(f"RandomCropFlip expects a C x H x W tensor, but got shape {tuple(image.shape)}")
        _, height, width = image.shape
        p = self.padding
        # Draw all three numbers every call so the stream does not depend on padding or flip_p.
        top, left = torch.randint(0, 2 * p + 1, (2,), generator=self.generator).tolist()
        flip = torch.rand((), generator=self.generator).item() < self.flip_p
        if p:
            image = F.pad(image, (p, p, p, p), value=self.fill)[:, top : top + height, left : left + width]
        return image.flip(-1) if flip else image

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip_p={self.flip_p}, fill={self.fill})"


class ResizeCenterCrop:
    """Resizes the shorter side to ``size`` (bilinear, antialiased) and crops the centre square.

    Deterministic; used for evaluation and as the fixed first step for folders of images.
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ConfigError(f"size must be a positive int, but got {size!r}", module="size")
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        _, height, width = image.shape
        scale = self.size / min(height, width)
        new_h, new_w = max(self.size, round(height * scale)), max(self.size, round(width * scale))
        if (new_h, new_w) != (height, width):
            image = F.interpolate(
                image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
            )[0].clamp_(0.0, 1.0)
        top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        return image[:, top : top + self.size, left : left + self.size]

    def __repr__(self) -> str:
        return f"ResizeCenterCrop(size={self.size})"


def train_transform(image_size: int, *, seed: int | None = None) -> RandomCropFlip:
    """The training augmentation for square images of side ``image_size`` (see module docstring)."""
    return RandomCropFlip(padding=default_padding(image_size), seed=seed)


def eval_transform(image_size: int | None = None) -> ResizeCenterCrop | None:
    """The evaluation transform: ``ResizeCenterCrop(image_size)`` or, without a size, none.

    The in-memory datasets need nothing at evaluation (normalisation is built in), so the default
    is ``None``, which can be passed as ``transform=`` directly.
    """
    return None if image_size is None else ResizeCenterCrop(image_size)
