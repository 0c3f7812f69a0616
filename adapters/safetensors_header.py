"""The header of a safetensors file, the project's one reader of it: an 8-byte little-endian
length, then that many bytes of JSON naming each tensor's dtype, shape and byte range. Reading
it reads no tensor data (the `safetensors` library's `safe_open` gives names, dtypes and shapes
too, but not where each tensor lies, which the base-model fingerprint samples). An adapter's
own file, whose tensors the server loads, is opened with that library, which checks it whole.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100_000_000  # the `safetensors` library's own limit


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # "F32", "BF16", ...
    shape: tuple[int, ...]
    begin: int  # byte offsets in the file (the header's data_offsets are after the header)
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    file_size: int


def weight_files(model_dir: str | Path) -> list[Path]:
    """A model directory's safetensors files (the shards of a sharded one), sorted by name;
    empty when it is not a local directory or holds none."""
    model_dir = Path(model_dir)
    return sorted(model_dir.glob("*.safetensors")) if model_dir.is_dir() else []


def read_header(path: str | Path) -> SafetensorsHeader:
    """Raises ValueError naming the file and what is wrong with its header."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        length = int.from_bytes(fh.read(LENGTH_BYTES), "little")
        if size < LENGTH_BYTES or not 2 <= length <= min(size - LENGTH_BYTES, MAX_HEADER_BYTES):
            raise ValueError(f"{path} is not a safetensors file: its header length {length} "
                             f"does not fit its {size} bytes")
        raw = fh.read(length)
    try:
        entries = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} has a safetensors header that is not JSON ({exc})") from exc
    if not isinstance(entries, dict):
        raise ValueError(f"{path} has a safetensors header that is not a JSON object")
    metadata = entries.pop("__metadata__", None) or {}
    data_start = LENGTH_BYTES + length
    tensors = {name: _tensor(path, name, entry, data_start, size)
               for name, entry in entries.items()}
    return SafetensorsHeader(tensors, metadata, size)


def _tensor(path: Path, name: str, entry, data_start: int, size: int) -> TensorInfo:
    try:
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        valid = (isinstance(dtype, str) and all(type(d) is int and d >= 0 for d in shape)
                 and type(begin) is int and type(end) is int
                 and 0 <= begin <= end <= size - data_start)
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{path}: the safetensors header entry of {name!r} is not a dtype, "
                         "a shape and data offsets inside the file")
    return TensorInfo(dtype, tuple(shape), data_start + begin, data_start + end)
