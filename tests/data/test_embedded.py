"""The embedded Fashion-MNIST subset: sizes, balance, and a byte-identical rebuild."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from prunekit.data import ImageArrayDataset, load_fashion_mnist_embedded
from prunekit.data.embedded import load_embedded_arrays
from prunekit.data.idx import read_idx

from .fakes import DEBIAN_DIR, needs_debian

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "prunekit" / "data" / "assets"


def _builder():
    spec = importlib.util.spec_from_file_location("make_embedded_subset", REPO / "scripts" / "make_embedded_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("train", "size"), [(True, 10000), (False, 2000)])
def test_sizes_and_balance(train: bool, size: int) -> None:
    dataset = load_fashion_mnist_embedded(train=train)
    assert isinstance(dataset, ImageArrayDataset) and len(dataset) == size
    assert np.bincount(dataset.targets.numpy(), minlength=10).tolist() == [size // 10] * 10
    image, label = dataset[0]
    assert image.shape == (1, 28, 28) and 0 <= label < 10
    arrays = load_embedded_arrays(train=train)
    assert arrays["images"].dtype == np.uint8 and arrays["labels"].dtype == np.uint8
    assert np.all(np.diff(arrays["indices"]) > 0)  # sorted, no repeats


def test_asset_is_small_and_documented() -> None:
    npz = ASSETS / "fashion_mnist_subset.npz"
    assert npz.stat().st_size < 7_000_000
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    assert digest in (ASSETS / "README.md").read_text()
    license_text = (ASSETS / "LICENSE-fashion-mnist.txt").read_text()
    assert "Copyright (c) 2017 Zalando SE" in license_text and "MIT" in license_text


@needs_debian
def test_deterministic_rebuild(tmp_path) -> None:
    builder = _builder()
    first = builder.build(tmp_path / "a", source=DEBIAN_DIR)
    second = builder.build(tmp_path / "b", source=DEBIAN_DIR)
    assert first.read_bytes() == second.read_bytes()
    shipped = ASSETS / "fashion_mnist_subset.npz"
    with np.load(first) as new, np.load(shipped) as old:
        assert new.files == old.files
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)
    if first.read_bytes() != shipped.read_bytes():
        built_with = re.search(r"zlib ([\d.]+)", (ASSETS / "README.md").read_text())
        pytest.skip(
            f"same arrays, different compressed bytes: zlib {zlib.ZLIB_RUNTIME_VERSION} here, "
            f"{built_with.group(1) if built_with else '?'} for the shipped file"
        )


@needs_debian
def test_indices_point_into_the_original() -> None:
    arrays = load_embedded_arrays(train=False)
    originals = read_idx(DEBIAN_DIR / "t10k-images-idx3-ubyte.gz", ndim=3)
    np.testing.assert_array_equal(originals[arrays["indices"]], arrays["images"])
