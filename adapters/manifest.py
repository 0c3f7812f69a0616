"""The manifest `training.lora` writes beside an adapter, and the base-model fingerprint in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adapters.safetensors_header import weight_files

MANIFEST_NAME = "deliberate_manifest.json"


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the model's safetensors files (sorted by name): same weights, same print."""
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
