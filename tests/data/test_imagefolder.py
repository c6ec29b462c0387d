"""The ImageFolder wrapper: split selection, resizing, normalisation."""

from __future__ import annotations

import pytest
import torch

from prunekit.data import ImageFolderDataset, load_imagefolder
from prunekit.errors import ConfigError

from .fakes import write_folder


def test_items_are_resized_and_normalised(tmp_path) -> None:
    write_folder(tmp_path / "imgs")
    ds = ImageFolderDataset(tmp_path / "imgs", image_size=16)
    assert len(ds) == 4 and ds.classes == ["cat", "dog"] and ds.num_classes == 2
    assert (ds.in_channels, ds.image_size) == (3, (16, 16))
    image, label = ds[3]
    assert image.shape == (3, 16, 16) and label == 1
    raw, _ = ImageFolderDataset(tmp_path / "imgs", mean=(0, 0, 0), std=(1, 1, 1))[0]
    assert raw.shape == (3, 20, 30) and raw.min() >= 0 and raw.max() <= 1


def test_split_selection(tmp_path) -> None:
    write_folder(tmp_path / "ds" / "train", per_class=3)
    write_folder(tmp_path / "ds" / "val", per_class=1)
    assert len(load_imagefolder(tmp_path / "ds", train=True)) == 6
    assert len(load_imagefolder(tmp_path / "ds", train=False)) == 2
    write_folder(tmp_path / "flat")
    with pytest.warns(UserWarning, match="evaluating on the training images"):
        assert len(load_imagefolder(tmp_path / "flat", train=False)) == 4
    write_folder(tmp_path / "only" / "train")
    with pytest.raises(ConfigError, match="no val or test"):
        load_imagefolder(tmp_path / "only", train=False)


def test_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="class folder"):
        ImageFolderDataset(tmp_path / "empty")


def test_transform_runs_before_normalisation(tmp_path) -> None:
    write_folder(tmp_path / "imgs", size=(8, 8))
    seen = []

    def spy(image: torch.Tensor) -> torch.Tensor:
        seen.append((float(image.min()), float(image.max())))
        return image

    ImageFolderDataset(tmp_path / "imgs", transform=spy)[0]
    assert seen[0][0] >= 0 and seen[0][1] <= 1
