"""get_dataset name resolution and its errors."""

from __future__ import annotations

import pytest

from prunekit.data import DEFAULT_DATASET, RandomCropFlip, get_dataset, list_datasets, register_dataset
from prunekit.data.registry import DATASETS
from prunekit.errors import ConfigError, UnknownNameError

from .fakes import write_folder


def test_builtin_names() -> None:
    assert DEFAULT_DATASET == "fashion-mnist-embedded"
    assert set(list_datasets()) >= {"fashion-mnist", "fashion-mnist-embedded", "cifar10", "cifar100", "imagefolder"}
    assert all(list_datasets().values())  # every name has a description


def test_default_and_augment() -> None:
    plain = get_dataset()
    assert len(plain) == 10000 and plain.transform is None
    augmented = get_dataset(augment=True, seed=0)
    assert isinstance(augmented.transform, RandomCropFlip) and augmented.transform.padding == 2
    assert len(get_dataset(train=False)) == 2000


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_dataset("fashoin-mnist")
    message = str(info.value)
    assert "did you mean 'fashion-mnist'" in message
    for name in ("cifar10", "cifar100", "fashion-mnist-embedded", "imagefolder"):
        assert name in message


def test_imagefolder_prefix(tmp_path) -> None:
    write_folder(tmp_path / "imgs")
    ds = get_dataset(f"imagefolder:{tmp_path / 'imgs'}", image_size=12, augment=True, seed=0)
    assert len(ds) == 4 and ds[0][0].shape == (3, 12, 12)
    assert get_dataset("imagefolder", root=tmp_path / "imgs").image_size == (224, 224)
    with pytest.raises(ConfigError, match="already names the folder"):
        get_dataset(f"imagefolder:{tmp_path}", root=tmp_path)
    with pytest.raises(ConfigError, match="needs a folder"):
        get_dataset("imagefolder")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="takes no root"):
        get_dataset(root="/tmp")
    with pytest.raises(ConfigError, match="image_size.*not resized, but got 32"):
        get_dataset(image_size=32)
    with pytest.raises(ConfigError, match="must be a string"):
        get_dataset(3)  # type: ignore[arg-type]


def test_register_dataset(monkeypatch) -> None:
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))
    monkeypatch.setattr(DATASETS, "_help", dict(DATASETS._help))

    @register_dataset("tiny", description="a test dataset")
    def tiny(root, *, train, augment, seed, download, image_size):
        return get_dataset(train=train)

    assert list_datasets()["tiny"] == "a test dataset" and len(get_dataset("tiny", train=False)) == 2000
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("tiny")(tiny)
