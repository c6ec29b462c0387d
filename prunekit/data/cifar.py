"""CIFAR-10 and CIFAR-100 from the official "python version" folders.

Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images";
https://www.cs.toronto.edu/~kriz/cifar.html. The folders are ``cifar-10-batches-py``
(``data_batch_1`` ... ``data_batch_5``, ``test_batch``) and ``cifar-100-python`` (``train``,
``test``; the 100 fine labels are used). Each batch is a pickled dict with ``b"data"`` (uint8
N x 3072, channel-major 32x32 planes) and ``b"labels"`` or ``b"fine_labels"``.

Warning:
    The batches are Python pickles, the official format: unpickling runs code chosen by whoever
    wrote the file. Only load CIFAR files from a source you trust.

Where the folder is looked for: ``root`` (the folder itself or its parent), then
``$PRUNEKIT_DATA``, then ``~/.cache/prunekit`` (downloading there with torchvision if
``download`` is true).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from prunekit.data._paths import DATA_ENV_VAR, cache_dir, explicit_dirs
from prunekit.data.arrays import ImageArrayDataset, Transform
from prunekit.errors import ConfigError

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "find_cifar",
    "load_cifar_arrays",
    "load_cifar10",
    "load_cifar100",
]

log = logging.getLogger(__name__)

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
# Per-channel statistics of the training sets' [0, 1] pixels.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

# variant -> (folder, train files, test files, label key, classes)
_LAYOUT: dict[int, tuple[str, tuple[str, ...], tuple[str, ...], bytes, tuple[str, ...]]] = {
    10: (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        CIFAR10_CLASSES,
    ),
    100: ("cifar-100-python", ("train",), ("test",), b"fine_labels", CIFAR100_CLASSES),
}


def _check_variant(variant: int) -> None:
    if variant not in _LAYOUT:
        raise ConfigError(f"variant must be 10 or 100, but got {variant!r}", module="variant")


def _has_files(folder: Path, variant: int) -> bool:
    _, train, test, *_ = _LAYOUT[variant]
    return all((folder / name).is_file() for name in train + test)


def find_cifar(root: str | os.PathLike[str] | None = None, *, variant: int = 10, download: bool = True) -> Path:
    """Returns the ``cifar-10-batches-py`` / ``cifar-100-python`` folder to read.

    Raises:
        ConfigError: the folder is not in ``root`` / ``$PRUNEKIT_DATA``, or nowhere and
            ``download`` is false. The message lists the files looked for.
    """
    _check_variant(variant)
    folder_name, train, test, *_ = _LAYOUT[variant]
    for path, where in explicit_dirs(root):
        for candidate in (path, path / folder_name):
            if _has_files(candidate, variant):
                return candidate
        raise ConfigError(
            f"{where}: CIFAR-{variant} not found in {str(path)!r} or {str(path / folder_name)!r} "
            f"(looked for {', '.join(train + test)})",
            module=where,
        )
    cache = cache_dir() / folder_name
    if _has_files(cache, variant):
        return cache
    if not download:
        raise ConfigError(
            f"CIFAR-{variant} not found: pass root= (a folder holding {folder_name}/) or set ${DATA_ENV_VAR}",
            module="root",
        )
    from torchvision.datasets import CIFAR10, CIFAR100

    log.info("downloading CIFAR-%d into %s", variant, cache.parent)
    (CIFAR10 if variant == 10 else CIFAR100)(root=str(cache.parent), train=True, download=True)
    return cache


def _load_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    name = str(path)
    try:
        with path.open("rb") as f:
            batch: Any = pickle.load(f, encoding="bytes")  # trusted files only, see the module docstring
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError) as exc:
        raise ConfigError(
            f"cannot unpickle CIFAR batch {name!r}: {exc!r}; is it truncated or corrupt?", module=name
        ) from exc
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ConfigError(
            f"CIFAR batch {name!r} must be a dict with b'data' and {label_key!r}, but got {keys}", module=name
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ConfigError(
            f"CIFAR batch {name!r}: b'data' must be uint8 N x 3072, but got {data.dtype} {data.shape}", module=name
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(
            f"CIFAR batch {name!r}: need {data.shape[0]} integer labels, but got {labels.dtype} {labels.shape}",
            module=name,
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar_arrays(
    root: str | os.PathLike[str] | None = None, *, variant: int = 10, train: bool = True, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One split as ``(images uint8 N x 3 x 32 x 32, labels int64 N)``.

    Raises:
        ConfigError: missing, corrupt or malformed batches, or labels out of range; the message
            names the file.
    """
    folder = find_cifar(root, variant=variant, download=download)
    _, train_files, test_files, label_key, classes = _LAYOUT[variant]
    parts = [_load_batch(folder / name, label_key) for name in (train_files if train else test_files)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ConfigError(
            f"CIFAR-{variant} in {str(folder)!r}: labels must be in [0, {len(classes)}), "
            f"but got range [{labels.min()}, {labels.max()}]",
            module=str(folder),
        )
    return images, labels


def _dataset(root: Any, variant: int, train: bool, transform: Transform | None, download: bool) -> ImageArrayDataset:
    images, labels = load_cifar_arrays(root, variant=variant, train=train, download=download)
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if variant == 10 else (CIFAR100_MEAN, CIFAR100_STD)
    return ImageArrayDataset(
        images,
        labels,
        classes=_LAYOUT[variant][4],
        mean=mean,
        std=std,
        transform=transform,
        name=f"cifar{variant}/{'train' if train else 'test'}",
    )


def load_cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    train: bool = True,
    transform: Transform | None = None,
    download: bool = True,
) -> ImageArrayDataset:
    """CIFAR-10 (50,000 train / 10,000 test, 3 x 32 x 32, 10 classes); see the module docstring."""
    return _dataset(root, 10, train, transform, download)


def load_cifar100(
    root: str | os.PathLike[str] | None = None,
    *,
    train: bool = True,
    transform: Transform | None = None,
    download: bool = True,
) -> ImageArrayDataset:
    """CIFAR-100 with its 100 fine labels (50,000 train / 10,000 test); see the module docstring."""
    return _dataset(root, 100, train, transform, download)
