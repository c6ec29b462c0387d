"""Datasets by name: ``get_dataset("cifar10", train=False)``.

Names: ``fashion-mnist-embedded`` (the default, ships with prunekit), ``fashion-mnist``,
``cifar10``, ``cifar100``, ``imagefolder`` (needs ``root``; ``imagefolder:PATH`` is short for
``name="imagefolder", root=PATH``). Users add their own with :func:`register_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from torch import Tensor
from torch.utils.data import Dataset

from prunekit.data.arrays import Transform
from prunekit.data.cifar import load_cifar10, load_cifar100
from prunekit.data.embedded import load_fashion_mnist_embedded
from prunekit.data.fashion_mnist import load_fashion_mnist
from prunekit.data.imagefolder import load_imagefolder
from prunekit.data.transforms import train_transform
from prunekit.errors import option_error
from prunekit.registry import Registry

__all__ = ["DATASETS", "DEFAULT_DATASET", "DatasetFactory", "get_dataset", "list_datasets", "register_dataset"]

DEFAULT_DATASET = "fashion-mnist-embedded"
_IMAGEFOLDER_SIZE = 224


class DatasetFactory(Protocol):
    """Builds one split. ``image_size`` is ``None`` unless the caller asked for a size."""

    def __call__(
        self,
        root: str | None,
        *,
        train: bool,
        augment: bool,
        seed: int | None,
        download: bool,
        image_size: int | None,
    ) -> Dataset[tuple[Tensor, int]]: ...


DATASETS: Registry[DatasetFactory] = Registry("dataset")


def register_dataset(name: str, *, description: str = "") -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: registers a :class:`DatasetFactory` under ``name``."""
    return DATASETS.register(name, description=description)


def _augmentation(size: int, augment: bool, seed: int | None) -> Transform | None:
    return train_transform(size, seed=seed) if augment else None


def _fixed_size(name: str, native: int, image_size: int | None) -> None:
    if image_size is not None and image_size != native:
        raise option_error(
            "image_size", f"{name} images are {native}x{native} and are not resized, but got {image_size}"
        )


@register_dataset(DEFAULT_DATASET, description="10k/2k class-balanced Fashion-MNIST subset shipped with prunekit")
def _embedded(root, *, train, augment, seed, download, image_size):  # type: ignore[no-untyped-def]
    if root is not None:
        raise option_error("root", f"{DEFAULT_DATASET} ships with prunekit and takes no root, but got {root!r}")
    _fixed_size(DEFAULT_DATASET, 28, image_size)
    return load_fashion_mnist_embedded(train=train, transform=_augmentation(28, augment, seed))


@register_dataset("fashion-mnist", description="Fashion-MNIST, 60k/10k 1x28x28, from the IDX .gz files")
def _fashion(root, *, train, augment, seed, download, image_size):  # type: ignore[no-untyped-def]
    _fixed_size("fashion-mnist", 28, image_size)
    return load_fashion_mnist(root, train=train, transform=_augmentation(28, augment, seed), download=download)


@register_dataset("cifar10", description="CIFAR-10, 50k/10k 3x32x32, from cifar-10-batches-py")
def _cifar10(root, *, train, augment, seed, download, image_size):  # type: ignore[no-untyped-def]
    _fixed_size("cifar10", 32, image_size)
    return load_cifar10(root, train=train, transform=_augmentation(32, augment, seed), download=download)


@register_dataset("cifar100", description="CIFAR-100 (fine labels), 50k/10k 3x32x32, from cifar-100-python")
def _cifar100(root, *, train, augment, seed, download, image_size):  # type: ignore[no-untyped-def]
    _fixed_size("cifar100", 32, image_size)
    return load_cifar100(root, train=train, transform=_augmentation(32, augment, seed), download=download)


@register_dataset("imagefolder", description="root/<class>/<image> folders (train/ and val/ if present)")
def _imagefolder(root, *, train, augment, seed, download, image_size):  # type: ignore[no-untyped-def]
    if root is None:
        raise option_error("root", "the imagefolder dataset needs a folder; use 'imagefolder:PATH'")
    size = _IMAGEFOLDER_SIZE if image_size is None else image_size
    return load_imagefolder(root, train=train, image_size=size, transform=_augmentation(size, augment, seed))


def get_dataset(
    name: str = DEFAULT_DATASET,
    *,
    root: str | os.PathLike[str] | None = None,
    train: bool = True,
    augment: bool = False,
    seed: int | None = None,
    download: bool = True,
    image_size: int | None = None,
) -> Dataset[tuple[Tensor, int]]:
    """Resolves a dataset name to one split.

    Every dataset returned here has ``classes``, ``num_classes``, ``in_channels`` and
    ``image_size`` attributes and yields ``(normalised float image, int label)``.

    Args:
        name: a registered name (see :func:`list_datasets`) or ``imagefolder:PATH``.
        root: where the files are (see each loader for the fallbacks); not allowed for
            ``fashion-mnist-embedded``.
        train: the training split, else the test / validation split.
        augment: random pad-and-crop plus horizontal flip (:func:`~prunekit.data.train_transform`).
        seed: seeds the augmentation's private generator (``None``: torch's global one).
        download: allow downloading with torchvision when the files are found nowhere.
        image_size: resize size for ``imagefolder`` (default 224); other datasets have a fixed size.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the choices.
        ConfigError: the data cannot be found or read.
    """
    if not isinstance(name, str):
        raise option_error("name", f"dataset name must be a string, but got {name!r}")
    if name.startswith("imagefolder:"):
        path = name.split(":", 1)[1]
        if root is not None:
            raise option_error("root", f"{name!r} already names the folder; do not also pass root={root!r}")
        name, root = "imagefolder", path
    factory = DATASETS.get(name, argument="name")
    return factory(
        None if root is None else os.fspath(root),
        train=train,
        augment=augment,
        seed=seed,
        download=download,
        image_size=image_size,
    )


def list_datasets() -> dict[str, str]:
    """Registered dataset names with their one-line descriptions."""
    return {name: DATASETS.describe(name) for name in DATASETS.names()}
