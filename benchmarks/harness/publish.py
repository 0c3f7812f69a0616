"""One benchmark run's results, written the way every benchmark commits them: NAME.json (the
data, every answer included, so a report can be rebuilt from it), NAME.png and NAME.md, the
report also printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def publish(name: str, data: dict, results: dict, meta: dict,
            figure: Callable[[dict, Path], object], report: Callable[[dict, dict], str],
            folder: Path = RESULTS) -> str:
    """Writes `data` as NAME.json, `figure(results, NAME.png)` and `report(results, meta)` as
    NAME.md under `folder`; returns (and prints) the report."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    figure(results, folder / f"{name}.png")
    text = report(results, meta)
    (folder / f"{name}.md").write_text(text)
    print(text)
    return text
