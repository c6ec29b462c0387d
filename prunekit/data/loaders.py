"""Seeded DataLoaders: same batches and same augmentations on every run with the same seed.

The loader's :class:`torch.Generator` drives the shuffling and, for ``workers > 0``, the base
seed DataLoader gives each worker. A transform with a ``reseed(seed)`` method (like
:class:`~prunekit.data.RandomCropFlip`) is reseeded from ``seed`` in the main process and from
the worker's seed in each worker, so the augmentations follow the seed too.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, get_worker_info

from prunekit.data.registry import DEFAULT_DATASET, get_dataset
from prunekit.errors import ConfigError, option_error

__all__ = ["make_loader", "make_loaders", "reseed"]


def reseed(dataset: object, seed: int) -> None:
    transform = getattr(dataset, "transform", None)
    if callable(getattr(transform, "reseed", None)):
        transform.reseed(seed)  # type: ignore[union-attr]


def _reseed_worker(worker_id: int) -> None:
    # torch.initial_seed() in a worker is the loader's base seed + worker_id.
    info = get_worker_info()
    if info is not None:
        reseed(info.dataset, torch.initial_seed() % 2**63)


def make_loader(
    dataset: Dataset[tuple[Tensor, int]],
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader[tuple[Tensor, int]]:
    """A DataLoader whose order and augmentations are fixed by ``seed``.

    Note:
        Reseeds ``dataset.transform`` in place (if it has ``reseed``), so two loaders over one
        dataset object share its augmentation stream.
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive int, but got {batch_size!r}", module="batch_size")
    if not isinstance(workers, int) or workers < 0:
        raise option_error("workers", f"must be an int >= 0, but got {workers!r}")
    reseed(dataset, seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_reseed_worker if workers > 0 else None,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )


def make_loaders(
    name: str = DEFAULT_DATASET,
    *,
    root: str | os.PathLike[str] | None = None,
    batch_size: int = 128,
    eval_batch_size: int | None = None,
    workers: int = 0,
    seed: int = 0,
    augment: bool = True,
    download: bool = True,
    image_size: int | None = None,
    pin_memory: bool = False,
) -> tuple[DataLoader[tuple[Tensor, int]], DataLoader[tuple[Tensor, int]]]:
    """``(train_loader, test_loader)`` for a dataset name (see :func:`~prunekit.data.get_dataset`).

    The training loader shuffles and, if ``augment``, pads-crops-flips; the test loader keeps
    the file order and never augments. ``eval_batch_size`` defaults to ``batch_size``.
    """
    train_set = get_dataset(
        name, root=root, train=True, augment=augment, seed=seed, download=download, image_size=image_size
    )
    test_set = get_dataset(name, root=root, train=False, download=download, image_size=image_size)
    train_loader = make_loader(
        train_set, batch_size=batch_size, shuffle=True, workers=workers, seed=seed, pin_memory=pin_memory
    )
    test_loader = make_loader(
        test_set,
        batch_size=eval_batch_size or batch_size,
        shuffle=False,
        workers=workers,
        seed=seed,
        pin_memory=pin_memory,
    )
    return train_loader, test_loader
