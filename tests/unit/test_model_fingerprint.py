"""The base-model fingerprint: cheap on a large model, and still telling bases apart."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters.manifest import FINGERPRINT_VERSION, model_fingerprint

PROC_IO = Path("/proc/self/io")


def bytes_read() -> int:
    """What this process has read so far (Linux's rchar: every read call, cached or not)."""
    return int(next(line.split()[1] for line in PROC_IO.read_text().splitlines()
                    if line.startswith("rchar:")))


def sparse_model(directory: Path, tensor_bytes: int, tensors: int = 8) -> Path:
    """A model whose weights are holes in a sparse file: a real header, no data written."""
    directory.mkdir()
    entries = {f"model.layers.{i}.mlp.up_proj.weight": {
        "dtype": "BF16", "shape": [tensor_bytes // 2], "data_offsets": [i * tensor_bytes,
                                                                         (i + 1) * tensor_bytes]}
        for i in range(tensors)}
    text = json.dumps(entries).encode()
    with open(directory / "model.safetensors", "wb") as fh:
        fh.write(len(text).to_bytes(8, "little") + text)
        fh.truncate(8 + len(text) + tensors * tensor_bytes)
    return directory


@pytest.mark.skipif(not PROC_IO.exists(), reason="counts reads through Linux's /proc/self/io")
def test_the_fingerprint_reads_headers_and_samples_not_the_weights(tmp_path):
    model = sparse_model(tmp_path / "big", tensor_bytes=32 << 20)  # 256 MiB of weights
    before = bytes_read()
    fingerprint = model_fingerprint(model)
    assert bytes_read() - before < 64 << 10  # the header and 8 samples of 256 bytes
    assert fingerprint.startswith(f"{FINGERPRINT_VERSION}:")


def save(directory: Path, tensors: dict) -> Path:
    directory.mkdir()
    save_file(tensors, str(directory / "model.safetensors"))
    return directory


def test_the_fingerprint_changes_with_the_layout_and_with_the_weights(tmp_path):
    weights = np.arange(24, dtype=np.float32)
    bases = {
        "base": {"w": weights.reshape(4, 6), "b": np.zeros(6, np.float32)},
        "same": {"w": weights.reshape(4, 6), "b": np.zeros(6, np.float32)},
        "shape": {"w": weights.reshape(6, 4), "b": np.zeros(6, np.float32)},  # same bytes
        "dtype": {"w": weights.view(np.int32).reshape(4, 6), "b": np.zeros(6, np.float32)},
        "tuned": {"w": (weights + 1).reshape(4, 6), "b": np.zeros(6, np.float32)},
        "bias": {"w": weights.reshape(4, 6), "b": np.full(6, 1e-3, np.float32)},
    }
    prints = {name: model_fingerprint(save(tmp_path / name, tensors))
              for name, tensors in bases.items()}
    assert prints["same"] == prints["base"]
    assert len(set(prints.values())) == len(prints) - 1
