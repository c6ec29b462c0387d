"""Fashion-MNIST loading: location resolution, validation and the dataset items."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

import prunekit.data._paths as paths
import prunekit.data.fashion_mnist as fm
from prunekit.data import FASHION_MNIST_CLASSES, ImageArrayDataset, load_fashion_mnist
from prunekit.errors import ConfigError

from .fakes import DEBIAN_DIR, idx_bytes, needs_debian, write_fake_fashion


@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    """No $PRUNEKIT_DATA, no Debian folder, an empty cache: only explicit roots count."""
    monkeypatch.delenv(paths.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "no-cache")


def test_explicit_root(no_defaults, tmp_path) -> None:
    root = write_fake_fashion(tmp_path / "fm", n_train=20, n_test=10)
    train, test = load_fashion_mnist(root), load_fashion_mnist(root, train=False)
    assert isinstance(train, ImageArrayDataset)
    assert (len(train), len(test)) == (20, 10)
    assert train.classes == list(FASHION_MNIST_CLASSES) and train.num_classes == 10
    assert (train.in_channels, train.image_size) == (1, (28, 28))
    image, label = train[3]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == 3
    raw = train.images[3].float() / 255
    torch.testing.assert_close(image, (raw - 0.2860) / 0.3530)


def test_subfolder_layouts(no_defaults, tmp_path) -> None:
    write_fake_fashion(tmp_path / "a" / "fashion-mnist")
    write_fake_fashion(tmp_path / "b" / "FashionMNIST" / "raw")
    assert fm.find_fashion_mnist(tmp_path / "a") == tmp_path / "a"
    assert len(load_fashion_mnist(tmp_path / "b")) == 20


def test_env_var(no_defaults, monkeypatch, tmp_path) -> None:
    write_fake_fashion(tmp_path / "env", n_train=30)
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(tmp_path / "env"))
    assert len(load_fashion_mnist()) == 30
    write_fake_fashion(tmp_path / "explicit", n_train=40)
    assert len(load_fashion_mnist(tmp_path / "explicit")) == 40  # root wins over the env var


def test_missing_explicit_root_does_not_fall_through(no_defaults, monkeypatch, tmp_path) -> None:
    write_fake_fashion(tmp_path / "env")
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(ConfigError, match="root: Fashion-MNIST not found in") as info:
        load_fashion_mnist(tmp_path / "empty")
    assert info.value.module == "root"
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"\$PRUNEKIT_DATA"):
        load_fashion_mnist()


def test_nothing_found_without_download(no_defaults) -> None:
    with pytest.raises(ConfigError, match="download=True"):
        load_fashion_mnist(download=False)


def test_mismatched_counts_name_the_file(no_defaults, tmp_path) -> None:
    root = write_fake_fashion(tmp_path / "fm", n_train=20)
    labels = root / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(19, np.uint8))))
    with pytest.raises(ConfigError, match="train-labels-idx1-ubyte.gz"):
        load_fashion_mnist(root)
    labels.write_bytes(gzip.compress(idx_bytes(np.full(20, 10, np.uint8))))
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 10\)"):
        load_fashion_mnist(root)


@needs_debian
def test_debian_default(monkeypatch) -> None:
    monkeypatch.delenv(paths.DATA_ENV_VAR, raising=False)
    assert fm.find_fashion_mnist(download=False) == DEBIAN_DIR
    test = load_fashion_mnist(train=False, download=False)
    assert len(test) == 10000
    pixels = test.images.float() / 255
    assert abs(pixels.mean().item() - 0.2860) < 0.005 and abs(pixels.std().item() - 0.3530) < 0.005


def test_download_path_without_network(no_defaults, monkeypatch, tmp_path) -> None:
    """The last-resort download goes through torchvision; a stand-in writes the files instead."""
    import torchvision.datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, *, train: bool, download: bool) -> None:
            calls.append((root, download))
            write_fake_fashion(tmp_path / "no-cache" / "FashionMNIST" / "raw", n_train=12)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    assert len(load_fashion_mnist()) == 12
    assert calls == [(str(tmp_path / "no-cache"), True)]
    assert len(load_fashion_mnist(download=False)) == 12  # now found in the cache, no second call
    assert len(calls) == 1
