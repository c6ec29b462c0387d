"""Fashion-MNIST read straight from its four IDX ``.gz`` files.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747) has 60,000 training and 10,000 test
grey-scale 28x28 images of 10 clothing classes. It is MIT licensed, (c) 2017 Zalando SE.

Where the files are looked for, first match wins:

1. the ``root`` argument (an error if the files are not there);
2. the environment variable ``$PRUNEKIT_DATA`` (an error if the files are not there);
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package);
4. ``~/.cache/prunekit``, downloading with torchvision's ``FashionMNIST(download=True)`` if
   ``download`` is true.

Each directory may hold the files itself, or a ``fashion-mnist/`` subfolder, or torchvision's
``FashionMNIST/raw/`` layout.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from prunekit.data._paths import DATA_ENV_VAR, cache_dir, explicit_dirs
from prunekit.data.arrays import ImageArrayDataset, Transform
from prunekit.data.idx import read_idx
from prunekit.errors import ConfigError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "DEBIAN_FASHION_MNIST_DIR",
    "find_fashion_mnist",
    "load_fashion_mnist_arrays",
    "load_fashion_mnist",
]

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_MNIST_MEAN: tuple[float] = (0.2860,)
FASHION_MNIST_STD: tuple[float] = (0.3530,)
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SUBDIRS = (".", "fashion-mnist", "FashionMNIST/raw")


def _locate(directory: Path, stem: str) -> Path | None:
    for sub in _SUBDIRS:
        for suffix in (".gz", ""):
            candidate = directory / sub / (stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def _complete(directory: Path) -> bool:
    return all(_locate(directory, stem) is not None for pair in _FILES.values() for stem in pair)


def find_fashion_mnist(root: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """Returns the directory to read Fashion-MNIST from (see the module docstring for the order).

    Args:
        root: an explicit directory; if given, the files must be there.
        download: allow the torchvision download into ``~/.cache/prunekit`` as a last resort.

    Raises:
        ConfigError: the files are not in ``root`` / ``$PRUNEKIT_DATA``, or nowhere and
            ``download`` is false.
    """
    looked_for = ", ".join(stem + ".gz" for pair in _FILES.values() for stem in pair)
    for path, where in explicit_dirs(root):
        if _complete(path):
            return path
        raise ConfigError(
            f"{where}: Fashion-MNIST not found in {str(path)!r} (looked for {looked_for} there and in its "
            f"subfolders {', '.join(_SUBDIRS[1:])})",
            module=where,
        )
    if _complete(DEBIAN_FASHION_MNIST_DIR):
        return DEBIAN_FASHION_MNIST_DIR
    cache = cache_dir()
    if _complete(cache):
        return cache
    if not download:
        raise ConfigError(
            f"Fashion-MNIST not found: pass root=, set ${DATA_ENV_VAR}, install Debian's dataset-fashion-mnist "
            f"({DEBIAN_FASHION_MNIST_DIR}), or allow download=True",
            module="root",
        )
    return _download(cache)


def _download(cache: Path) -> Path:
    # Only for machines with internet access; the tests swap in a fake FashionMNIST class.
    from torchvision.datasets import FashionMNIST

    log.info("downloading Fashion-MNIST into %s", cache)
    cache.mkdir(parents=True, exist_ok=True)
    FashionMNIST(root=str(cache), train=True, download=True)
    if not _complete(cache):
        raise ConfigError(f"torchvision's download did not leave the IDX files in {str(cache)!r}", module="root")
    return cache


def load_fashion_mnist_arrays(
    root: str | os.PathLike[str] | None = None, *, train: bool = True, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split as ``(images uint8 N x 28 x 28, labels uint8 N)``.

    Raises:
        ConfigError: files missing, corrupt, of the wrong shape, or with labels outside 0-9;
            the message names the file.
    """
    directory = find_fashion_mnist(root, download=download)
    image_stem, label_stem = _FILES[bool(train)]
    image_path, label_path = _locate(directory, image_stem), _locate(directory, label_stem)
    if image_path is None or label_path is None:  # the directory changed under us
        raise ConfigError(f"Fashion-MNIST files vanished from {str(directory)!r}", module="root")
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ConfigError(
            f"{str(image_path)!r}: expected uint8 images of 28x28, but got {images.dtype} {images.shape[1:]}",
            module=str(image_path),
        )
    if labels.dtype != np.uint8 or labels.shape[0] != images.shape[0]:
        raise ConfigError(
            f"{str(label_path)!r}: expected {images.shape[0]} uint8 labels to match {image_path.name}, "
            f"but got {labels.shape[0]} of {labels.dtype}",
            module=str(label_path),
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ConfigError(
            f"{str(label_path)!r}: labels must be in [0, 10), but got a maximum of {labels.max()}",
            module=str(label_path),
        )
    return images, labels


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    train: bool = True,
    transform: Transform | None = None,
    download: bool = True,
) -> ImageArrayDataset:
    """The full Fashion-MNIST split as a dataset of ``(1 x 28 x 28 normalised image, label)``.

    Images are normalised with mean 0.2860 and std 0.3530 (the training set's statistics).

    Args:
        root: directory with the IDX files (see the module docstring for the fallbacks).
        train: the 60,000-image training split, else the 10,000-image test split.
        transform: applied to the ``[0, 1]`` image before normalisation.
        download: allow the torchvision download as a last resort.
    """
    images, labels = load_fashion_mnist_arrays(root, train=train, download=download)
    return ImageArrayDataset(
        images,
        labels,
        classes=FASHION_MNIST_CLASSES,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        transform=transform,
        name=f"fashion-mnist/{'train' if train else 'test'}",
    )
