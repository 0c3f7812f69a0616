"""A model must be a local directory: this project never downloads weights (no hub at run time),
so a hub id or a typo is said up front, naming the setting, not deep inside vLLM or after a
training run."""

from __future__ import annotations

from pathlib import Path


def require_local_model(path: str | Path, setting: str) -> Path:
    """`path` as a directory holding a Hugging Face `config.json`; else a ValueError that says
    what to give instead."""
    directory = Path(path)
    if (directory / "config.json").is_file():
        return directory
    if directory.is_dir():
        raise ValueError(f"{setting}: {str(path)!r} has no config.json; give a Hugging Face "
                         "model directory (config.json, weights, tokenizer)")
    hub_like = not directory.is_absolute() and len(directory.parts) == 2
    hint = (f" It looks like a hub id: this machine does not download models; fetch it where "
            f"there is a network (huggingface-cli download {path} --local-dir DIR) and give DIR"
            if hub_like else "")
    raise ValueError(f"{setting}: {str(path)!r} is not a local model directory.{hint}")
