"""Builds prunekit's embedded Fashion-MNIST subset from the full IDX files.

The subset is class-balanced: 1,000 training images per class (10,000) and 200 test images per
class (2,000), chosen with a fixed-seed numpy Generator and stored in the original order (sorted
indices). It writes, into ``--out-dir``:

- ``fashion_mnist_subset.npz``: uint8 ``train_images``/``test_images`` (N x 28 x 28), uint8
  ``train_labels``/``test_labels`` and int32 ``train_indices``/``test_indices`` (the positions in
  the original files, for provenance);
- ``LICENSE-fashion-mnist.txt``: the MIT licence and attribution of Fashion-MNIST;
- ``README.md``: the command that built the files and the npz's sha256.

The output is byte-for-byte deterministic: ``np.savez_compressed`` stamps the current time into
the zip entries, so the npz is written with :mod:`zipfile` and a fixed date instead. (The
compressed bytes also depend on the zlib version; the README records it.)

Usage, from the repository root::

    .venv/bin/python scripts/make_embedded_subset.py
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO))

from prunekit.data.idx import read_idx  # noqa: E402

SEED = 20170825  # Fashion-MNIST's release date
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
NUM_CLASSES = 10
NPZ_NAME = "fashion_mnist_subset.npz"
LICENSE_NAME = "LICENSE-fashion-mnist.txt"
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = REPO / "prunekit" / "data" / "assets"
COMMAND = ".venv/bin/python scripts/make_embedded_subset.py"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

LICENSE_TEXT = """\
The file fashion_mnist_subset.npz in this folder is a subset of Fashion-MNIST
(10,000 training and 2,000 test images, 1,000 and 200 per class), taken unchanged
from the original IDX files.

Fashion-MNIST: Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel
Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
https://github.com/zalandoresearch/fashion-mnist

The MIT License (MIT)

Copyright (c) 2017 Zalando SE

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def select_balanced(labels: np.ndarray, *, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` items of each class 0..9, drawn without replacement.

    Each class's candidates are ordered by ``rng.random`` keys rather than with
    ``rng.choice``: numpy guarantees the bit stream of a seeded PCG64, and ``random()`` maps it
    to doubles directly, while the algorithms behind ``choice`` may change between versions.
    """
    chosen = []
    for label in range(NUM_CLASSES):
        candidates = np.flatnonzero(labels == label)
        if candidates.size < per_class:
            raise SystemExit(f"class {label} has only {candidates.size} items, need {per_class}")
        keys = rng.random(candidates.size)
        chosen.append(candidates[np.argsort(keys, kind="stable")[:per_class]])
    return np.sort(np.concatenate(chosen))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` (same format, ``np.load`` reads it), minus the timestamps."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


def build(out_dir: Path, *, source: Path = DEFAULT_SOURCE, seed: int = SEED) -> Path:
    """Writes the npz, licence and README into ``out_dir``; returns the npz path."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, prefix, per_class in (("train", "train", TRAIN_PER_CLASS), ("test", "t10k", TEST_PER_CLASS)):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz", ndim=1)
        indices = select_balanced(labels, per_class=per_class, rng=rng)
        arrays[f"{split}_images"] = images[indices].astype(np.uint8)
        arrays[f"{split}_labels"] = labels[indices].astype(np.uint8)
        arrays[f"{split}_indices"] = indices.astype(np.int32)
    out_dir.mkdir(parents=True, exist_ok=True)
    npz = out_dir / NPZ_NAME
    write_npz(npz, arrays)
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    (out_dir / LICENSE_NAME).write_text(LICENSE_TEXT)
    (out_dir / "README.md").write_text(
        "# Embedded data\n\n"
        f"`{NPZ_NAME}`: a class-balanced Fashion-MNIST subset ({TRAIN_PER_CLASS * NUM_CLASSES} train, "
        f"{TEST_PER_CLASS * NUM_CLASSES} test images; seed {seed}), MIT licensed, see `{LICENSE_NAME}`.\n\n"
        f"Built from Debian's `dataset-fashion-mnist` ({DEFAULT_SOURCE}) with `{COMMAND}` "
        f"(numpy {np.__version__}, zlib {zlib.ZLIB_RUNTIME_VERSION}); "
        f"sha256 `{digest}`, {npz.stat().st_size} bytes.\n"
    )
    return npz


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with the four IDX .gz files")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where to write the npz, licence, README")
    args = parser.parse_args(argv)
    npz = build(args.out_dir, source=args.source)
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    print(f"wrote {npz} ({npz.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
