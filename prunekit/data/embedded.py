"""The Fashion-MNIST subset that ships inside prunekit, so examples and tests run offline.

10,000 training images (1,000 per class) and 2,000 test images (200 per class) from Fashion-MNIST
(Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747; MIT licence, (c) 2017 Zalando SE: see
``assets/LICENSE-fashion-mnist.txt``), built by ``scripts/make_embedded_subset.py`` with a fixed
seed. ``assets/README.md`` records the command and the file's sha256.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np

from prunekit.data.arrays import ImageArrayDataset, Transform
from prunekit.data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD
from prunekit.errors import ConfigError

__all__ = ["EMBEDDED_ASSET", "load_embedded_arrays", "load_fashion_mnist_embedded"]

EMBEDDED_ASSET = "assets/fashion_mnist_subset.npz"
_KEYS = ("images", "labels", "indices")


def load_embedded_arrays(*, train: bool = True) -> dict[str, np.ndarray]:
    """The subset's arrays for one split: ``images`` (uint8 N x 28 x 28), ``labels`` (uint8 N)
    and ``indices`` (int32 N, positions in the original Fashion-MNIST files).

    Raises:
        ConfigError: the asset is missing from the installation or incomplete.
    """
    split = "train" if train else "test"
    resource = resources.files("prunekit.data").joinpath(EMBEDDED_ASSET)
    try:
        payload = resource.read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(
            f"the embedded Fashion-MNIST subset prunekit/data/{EMBEDDED_ASSET} is missing from this installation; "
            "reinstall prunekit or rebuild it with scripts/make_embedded_subset.py",
            module=EMBEDDED_ASSET,
        ) from exc
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        missing = [f"{split}_{key}" for key in _KEYS if f"{split}_{key}" not in npz.files]
        if missing:
            raise ConfigError(f"{EMBEDDED_ASSET} lacks the arrays {missing}; rebuild it", module=EMBEDDED_ASSET)
        return {key: npz[f"{split}_{key}"] for key in _KEYS}


def load_fashion_mnist_embedded(*, train: bool = True, transform: Transform | None = None) -> ImageArrayDataset:
    """The embedded subset as the same dataset type as :func:`~prunekit.data.load_fashion_mnist`.

    Args:
        train: the 10,000-image training part, else the 2,000-image test part.
        transform: applied to the ``[0, 1]`` image before normalisation.

    Note:
        Normalisation uses the full training set's mean/std (0.2860/0.3530), not the subset's, so
        a model trained on either sees the same input scale.
    """
    arrays = load_embedded_arrays(train=train)
    return ImageArrayDataset(
        arrays["images"],
        arrays["labels"],
        classes=FASHION_MNIST_CLASSES,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        transform=transform,
        name=f"fashion-mnist-embedded/{'train' if train else 'test'}",
    )
