"""Datasets, transforms and loaders for training and evaluating pruned models.

Every dataset yields ``(normalised float image C x H x W, int label)`` and carries ``classes``,
``num_classes``, ``in_channels`` and ``image_size``. The default, ``fashion-mnist-embedded``,
ships with prunekit so everything runs offline. This package does not import the pruning engine.
"""

from prunekit.data.arrays import ImageArrayDataset, Transform
from prunekit.data.cifar import load_cifar10, load_cifar100
from prunekit.data.embedded import load_fashion_mnist_embedded
from prunekit.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from prunekit.data.idx import read_idx
from prunekit.data.imagefolder import ImageFolderDataset, load_imagefolder
from prunekit.data.loaders import make_loader, make_loaders
from prunekit.data.registry import DATASETS, DEFAULT_DATASET, get_dataset, list_datasets, register_dataset
from prunekit.data.transforms import RandomCropFlip, ResizeCenterCrop, eval_transform, train_transform

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "FASHION_MNIST_CLASSES",
    "ImageArrayDataset",
    "ImageFolderDataset",
    "RandomCropFlip",
    "ResizeCenterCrop",
    "Transform",
    "eval_transform",
    "get_dataset",
    "list_datasets",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_fashion_mnist_embedded",
    "load_imagefolder",
    "make_loader",
    "make_loaders",
    "read_idx",
    "register_dataset",
    "train_transform",
]
