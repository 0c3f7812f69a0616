"""The local tasks' data: JSON lines beside this file (`python -m benchmarks.eval_harness
--make-data` writes them from the demo tasks; the hub's datasets are out of reach here)."""

from __future__ import annotations

from pathlib import Path

import datasets

DATA = Path(__file__).parent / "data"


def _load(task: str, **_: object) -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {"test": datasets.Dataset.from_json(str(DATA / f"{task}.jsonl"))})


def load_arithmetic(**kwargs: object) -> datasets.DatasetDict:
    return _load("arithmetic", **kwargs)


def load_countdown(**kwargs: object) -> datasets.DatasetDict:
    return _load("countdown", **kwargs)
