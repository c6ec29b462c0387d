"""The IDX reader on the real Fashion-MNIST files and on corrupted ones."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from prunekit.data import read_idx
from prunekit.errors import ConfigError

from .fakes import DEBIAN_DIR, idx_bytes, needs_debian


@needs_debian
@pytest.mark.parametrize(("prefix", "count"), [("train", 60000), ("t10k", 10000)])
def test_real_fashion_mnist_files(prefix: str, count: int) -> None:
    images = read_idx(DEBIAN_DIR / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
    labels = read_idx(DEBIAN_DIR / f"{prefix}-labels-idx1-ubyte.gz", ndim=1)
    assert images.shape == (count, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [count // 10] * 10  # Fashion-MNIST is balanced


def test_round_trip_gzip_and_plain(tmp_path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    (tmp_path / "a").write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    assert read_idx(tmp_path / "a").flags.writeable


def test_big_endian_int32(tmp_path) -> None:
    values = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "i").write_bytes(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes())
    out = read_idx(tmp_path / "i")
    assert out.tolist() == [1, -2, 70000] and out.dtype.isnative


def _error(path, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        read_idx(path, **kwargs)
    assert str(path) in str(info.value) and info.value.module == str(path)
    return str(info.value)


def test_bad_magic(tmp_path) -> None:
    data = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    data[0] = 0x08
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    assert "bad magic number" in _error(path)


def test_unknown_type_code(tmp_path) -> None:
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 0]))
    assert "bad magic number 0x00004201" in _error(path)


def test_truncated_data(tmp_path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-100]))
    assert "truncated" in _error(path)


def test_truncated_gzip_stream(tmp_path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 10))
    path.write_bytes(blob[: len(blob) // 2])
    assert "gzip" in _error(path)


def test_trailing_bytes(tmp_path) -> None:
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    assert "longer than its header" in _error(path)


def test_wrong_ndim(tmp_path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    assert "1 dimensions" in _error(path, ndim=3)


def test_empty_and_missing(tmp_path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert "no header" in _error(tmp_path / "empty")
    assert "does not exist" in _error(tmp_path / "missing.gz")
