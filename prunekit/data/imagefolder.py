"""A folder of images, one sub-folder per class: a thin wrapper over torchvision's ``ImageFolder``.

Items follow the convention of :mod:`prunekit.data.arrays`: the image becomes a float
``3 x H x W`` tensor in ``[0, 1]``, is resized and centre-cropped to ``image_size`` (if given),
goes through ``transform``, and is normalised (ImageNet statistics by default).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from prunekit.data.arrays import Transform
from prunekit.data.transforms import ResizeCenterCrop
from prunekit.errors import ConfigError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageFolderDataset", "load_imagefolder"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_EVAL_SPLITS = ("val", "test")


class ImageFolderDataset(Dataset[tuple[Tensor, int]]):
    """``root/<class>/<image>`` as ``(normalised 3 x S x S image, label)``.

    Args:
        root: the folder whose sub-folders are the classes (sorted names = label order).
        image_size: resize the shorter side to this and crop the centre square; ``None`` keeps
            the images as they are (they must then all have one size to be batched).
        transform: applied to the ``[0, 1]`` image after resizing, before normalisation.
        mean: per-channel mean for normalisation.
        std: per-channel std for normalisation.
        skip_bad_images: check every file when the dataset is made and leave out those that are
            not readable images, with one warning giving their count; by default an unreadable
            image is an error naming the file when it is loaded.

    Raises:
        ConfigError: ``root`` is not a folder or holds no class folders with images; an image
            cannot be read (when loaded, or here with ``skip_bad_images`` if none is readable).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        image_size: int | None = None,
        transform: Transform | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        skip_bad_images: bool = False,
    ) -> None:
        from torchvision.datasets import ImageFolder  # imported here to keep `import prunekit.data` light

        path = Path(root).expanduser()
        if not path.is_dir():
            raise ConfigError(f"image folder {str(path)!r} is not a directory", module=str(path))
        try:
            self.folder = ImageFolder(str(path))
        except (FileNotFoundError, RuntimeError) as exc:
            raise ConfigError(f"image folder {str(path)!r}: {exc}", module=str(path)) from exc
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ConfigError(
                f"mean and std need 3 values (std > 0), but got {tuple(mean)}, {tuple(std)}", module="mean"
            )
        self.skipped: list[str] = []
        if skip_bad_images:
            self._drop_unreadable(path)
        self.root = path
        self.classes = list(self.folder.classes)
        self.targets = list(self.folder.targets)
        self.resize = ResizeCenterCrop(image_size) if image_size is not None else None
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self._mean = torch.tensor(self.mean).view(3, 1, 1)
        self._std = torch.tensor(self.std).view(3, 1, 1)

    def _drop_unreadable(self, path: Path) -> None:
        from PIL import Image

        good = []
        for file, label in self.folder.samples:
            try:
                with Image.open(file) as im:
                    im.verify()
            except Exception:  # PIL raises many types for a bad file; any of them means "skip it"
                self.skipped.append(file)
            else:
                good.append((file, label))
        if not good:
            raise ConfigError(f"image folder {str(path)!r}: none of its images can be read", module=str(path))
        if self.skipped:
            warnings.warn(
                f"image folder {str(path)!r}: skipped {len(self.skipped)} unreadable image(s), e.g. {self.skipped[0]!r}",
                stacklevel=3,
            )
            self.folder.samples = self.folder.imgs = good
            self.folder.targets = [label for _, label in good]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def image_size(self) -> tuple[int, int] | None:
        return None if self.resize is None else (self.resize.size, self.resize.size)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from torchvision.transforms.functional import pil_to_tensor

        try:
            pil, label = self.folder[index]  # ImageFolder's loader converts to RGB
        except Exception as exc:  # PIL: UnidentifiedImageError, truncated data, a vanished file...
            file = self.folder.samples[index][0]
            raise ConfigError(
                f"image {file!r} cannot be read ({type(exc).__name__}: {exc}); remove it, or pass "
                "skip_bad_images=True to leave unreadable images out",
                module=file,
            ) from None
        image = pil_to_tensor(pil).float().div_(255.0)
        if self.resize is not None:
            image = self.resize(image)
        if self.transform is not None:
            image = self.transform(image)
        return (image - self._mean) / self._std, int(label)

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset(root={str(self.root)!r}, size={len(self)}, classes={self.num_classes}, "
            f"resize={self.resize!r}, transform={self.transform!r})"
        )


def load_imagefolder(
    path: str | os.PathLike[str],
    *,
    train: bool = True,
    image_size: int | None = None,
    transform: Transform | None = None,
    skip_bad_images: bool = False,
) -> ImageFolderDataset:
    """Picks the split of ``path`` and wraps it.

    If ``path/train`` exists, the training split is ``path/train`` and the evaluation split
    ``path/val`` (or ``path/test``). Otherwise ``path`` itself serves both, with a warning when it
    is used for evaluation.
    """
    base = Path(path).expanduser()
    if (base / "train").is_dir():
        if train:
            return ImageFolderDataset(
                base / "train", image_size=image_size, transform=transform, skip_bad_images=skip_bad_images
            )
        for split in _EVAL_SPLITS:
            if (base / split).is_dir():
                return ImageFolderDataset(
                    base / split, image_size=image_size, transform=transform, skip_bad_images=skip_bad_images
                )
        raise ConfigError(
            f"image folder {str(base)!r} has a train/ split but no {' or '.join(_EVAL_SPLITS)}/ split to evaluate on",
            module=str(base),
        )
    if not train:
        warnings.warn(
            f"image folder {str(base)!r} has no train/ and val/ splits; evaluating on the training images",
            stacklevel=2,
        )
    return ImageFolderDataset(base, image_size=image_size, transform=transform, skip_bad_images=skip_bad_images)
