"""CIFAR-10/100 loading from tiny fake pickle folders written here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import prunekit.data._paths as paths
from prunekit.data import load_cifar10, load_cifar100
from prunekit.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, find_cifar
from prunekit.errors import ConfigError


def _batch(n: int, label_key: bytes, num_classes: int, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        label_key: [int(x) for x in np.arange(n) % num_classes],
        b"batch_label": b"fake",
    }


def _write(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj))


def fake_cifar10(parent: Path, *, n: int = 4) -> Path:
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write(folder / f"data_batch_{i}", _batch(n, b"labels", 10, i))
    _write(folder / "test_batch", _batch(n, b"labels", 10, 0))
    return folder


def fake_cifar100(parent: Path, *, n: int = 6) -> Path:
    folder = parent / "cifar-100-python"
    folder.mkdir(parents=True)
    _write(folder / "train", {**_batch(n, b"fine_labels", 100, 1), b"coarse_labels": [0] * n})
    _write(folder / "test", {**_batch(n, b"fine_labels", 100, 2), b"coarse_labels": [0] * n})
    return folder


@pytest.fixture(autouse=True)
def _no_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "no-cache")


def test_cifar10(tmp_path) -> None:
    folder = fake_cifar10(tmp_path)
    train = load_cifar10(tmp_path)  # the parent folder works...
    test = load_cifar10(folder, train=False)  # ...and so does the folder itself
    assert (len(train), len(test)) == (20, 4)
    assert train.classes == list(CIFAR10_CLASSES) and (train.in_channels, train.image_size) == (3, (32, 32))
    image, label = train[5]
    assert image.shape == (3, 32, 32) and label == 1
    raw = pickle.loads((folder / "data_batch_2").read_bytes())[b"data"][1].reshape(3, 32, 32)
    expected = (
        torch.from_numpy(raw).float() / 255 - torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    ) / torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)
    torch.testing.assert_close(image, expected)


def test_cifar100_fine_labels(tmp_path) -> None:
    fake_cifar100(tmp_path)
    train = load_cifar100(tmp_path)
    assert len(train) == 6 and train.num_classes == 100 and train.classes == list(CIFAR100_CLASSES)
    assert train.targets.tolist() == list(range(6))


def test_missing_folder_lists_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="data_batch_1") as info:
        load_cifar10(tmp_path / "nothing")
    assert info.value.module == "root"
    with pytest.raises(ConfigError, match="not found"):
        find_cifar(variant=100, download=False)
    with pytest.raises(ConfigError, match="variant must be 10 or 100"):
        find_cifar(tmp_path, variant=7)


def test_truncated_pickle(tmp_path) -> None:
    folder = fake_cifar10(tmp_path)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ConfigError, match="data_batch_3.*truncated or corrupt"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([1, 2, 3], "must be a dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "b'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "uint8 N x 3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "need 2 integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels must be in \[0, 10\)"),
    ],
)
def test_malformed_batches(tmp_path, bad: object, message: str) -> None:
    folder = fake_cifar10(tmp_path)
    _write(folder / "test_batch", bad)
    with pytest.raises(ConfigError, match=message):
        load_cifar10(tmp_path, train=False)
