"""An in-memory image classification dataset over uint8 arrays.

Fashion-MNIST (full or embedded) and CIFAR are all small enough to hold in memory, so they share
this one type. The transform convention, shared with :mod:`prunekit.data.imagefolder`:

1. the image is converted to a float tensor ``C x H x W`` with values in ``[0, 1]``;
2. the optional ``transform`` is applied to that tensor (so padding with 0 pads with black, as
   torchvision's PIL-based CIFAR recipe does);
3. the result is normalised with the dataset's per-channel ``mean`` and ``std``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from prunekit.errors import ConfigError

__all__ = ["ImageArrayDataset", "Transform"]

Transform = Callable[[Tensor], Tensor]
"""A transform maps a float ``C x H x W`` image in ``[0, 1]`` to another such image."""


class ImageArrayDataset(Dataset[tuple[Tensor, int]]):
    """Images and labels held as uint8 arrays; items are ``(normalised float image, int label)``.

    Args:
        images: uint8 array ``N x H x W`` (one channel) or ``N x C x H x W``.
        labels: integer array of length ``N`` with values in ``[0, len(classes))``.
        classes: the class names, index = label.
        mean: per-channel mean of the ``[0, 1]`` pixel values (one value per channel).
        std: per-channel standard deviation, same length as ``mean``.
        transform: applied to the ``[0, 1]`` image before normalisation (see the module docstring).
        name: a short name used in ``repr`` and messages.

    Raises:
        ConfigError: shapes, dtypes, label range or statistics are inconsistent.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        transform: Transform | None = None,
        name: str = "dataset",
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8:
            raise ConfigError(f"{name}: images must be uint8, but got {images.dtype}", module=name)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ConfigError(
                f"{name}: images must be N x H x W or N x C x H x W, but got shape {images.shape}", module=name
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ConfigError(
                f"{name}: need one label per image, but got {labels.shape} labels for {images.shape[0]} images",
                module=name,
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ConfigError(f"{name}: labels must be integers, but got {labels.dtype}", module=name)
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ConfigError(
                f"{name}: labels must be in [0, {len(classes)}), but got range [{labels.min()}, {labels.max()}]",
                module=name,
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ConfigError(
                f"{name}: mean and std need {channels} values (std > 0), but got mean={tuple(mean)}, std={tuple(std)}",
                module=name,
            )
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.classes = list(classes)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.transform = transform
        self.name = name
        self._mean = torch.tensor(self.mean).view(-1, 1, 1)
        self._std = torch.tensor(self.std).view(-1, 1, 1)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index].float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return (image - self._mean) / self._std, int(self.targets[index])

    def __repr__(self) -> str:
        c, (h, w) = self.in_channels, self.image_size
        return (
            f"{type(self).__name__}(name={self.name!r}, size={len(self)}, image={c}x{h}x{w}, "
            f"classes={self.num_classes}, transform={self.transform!r})"
        )
