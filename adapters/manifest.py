"""The manifest `training.lora` writes beside an adapter, and the base-model fingerprint in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adapters.safetensors_header import read_header, weight_files

MANIFEST_NAME = "deliberate_manifest.json"
FINGERPRINT_KEY = "base_model_fingerprint"
# Manifests written before FINGERPRINT_KEY carry this: the sha256 of every weight byte.
LEGACY_SHA256_KEY = "base_model_sha256"
FINGERPRINT_VERSION = "v2"
SAMPLE_BYTES = 256  # read from the middle of each tensor


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over each safetensors file's name and size, its header's tensors (name, dtype,
    shape, byte range) and SAMPLE_BYTES from the middle of each tensor.

    A base of another layout changes the headers; other weights in the same layout (an
    instruct tune of a base, a merged adapter: training moves every value of a tensor it
    trains) change the samples. It reads the headers and 256 bytes a tensor (an 8B Llama: 291
    tensors), not every weight byte (16 GB).
    """
    files = weight_files(model_dir)
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    digest = hashlib.sha256()
    for path in files:
        header = read_header(path)
        digest.update(json.dumps([path.name, header.file_size]).encode())
        with open(path, "rb", buffering=0) as fh:
            for name in sorted(header.tensors):
                tensor = header.tensors[name]
                digest.update(json.dumps([name, tensor.dtype, tensor.shape, tensor.begin,
                                          tensor.end]).encode())
                size = min(SAMPLE_BYTES, tensor.end - tensor.begin)
                fh.seek((tensor.begin + tensor.end - size) // 2)
                digest.update(fh.read(size))
    return f"{FINGERPRINT_VERSION}:{digest.hexdigest()}"


def weights_sha256(model_dir: str | Path) -> str:
    """The fingerprint before FINGERPRINT_VERSION, which manifests carry as LEGACY_SHA256_KEY:
    sha256 over every byte of every weight file, so it is computed only to check one of them."""
    digest = hashlib.sha256()
    files = weight_files(model_dir)
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_manifest(adapter_dir: str | Path) -> dict | None:
    path = Path(adapter_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_manifest(adapter_dir: str | Path, manifest: dict) -> Path:
    path = Path(adapter_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
