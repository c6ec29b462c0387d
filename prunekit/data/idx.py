"""Reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the values in C order (LeCun et al., http://yann.lecun.com/exdb/mnist/).
The files are usually gzip-compressed; :func:`read_idx` accepts both forms and tells them apart
by the gzip magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from prunekit.errors import ConfigError

__all__ = ["read_idx"]

# IDX type codes -> numpy dtypes (multi-byte types are big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"IDX file {str(path)!r} does not exist", module=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read IDX file {str(path)!r}: {exc}", module=str(path)) from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (an OSError) on bad headers and EOFError on truncated streams.
        raise ConfigError(
            f"IDX file {str(path)!r} is not a valid gzip stream ({exc}); the file is corrupt or truncated, "
            "delete it and fetch it again",
            module=str(path),
        ) from exc


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file (optionally gzip-compressed) into a numpy array.

    Args:
        path: the ``.gz`` or uncompressed IDX file.
        ndim: if given, the number of dimensions the file must have (3 for images, 1 for labels).

    Returns:
        An array of the file's dtype (converted to native byte order) and shape.

    Raises:
        ConfigError: the file is missing, not gzip/IDX, has the wrong magic number or number of
            dimensions, or holds fewer or more bytes than its header announces. The message and
            ``module`` name the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    name = str(path)
    if len(data) < 4:
        raise ConfigError(f"IDX file {name!r} is truncated: {len(data)} bytes, no header", module=name)
    zero0, zero1, code, dims = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES:
        raise ConfigError(
            f"IDX file {name!r} has a bad magic number 0x{data[:4].hex()}; expected 0x0000TTDD with a "
            f"type code TT in {{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}}",
            module=name,
        )
    if ndim is not None and dims != ndim:
        raise ConfigError(
            f"IDX file {name!r} has {dims} dimensions (magic 0x{data[:4].hex()}), but {ndim} were expected; "
            "are the image and label files swapped?",
            module=name,
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise ConfigError(f"IDX file {name!r} is truncated inside its header", module=name)
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise ConfigError(
            f"IDX file {name!r} is {what}: header shape {shape} needs {expected} bytes of data, "
            f"but the file has {actual}",
            module=name,
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)
