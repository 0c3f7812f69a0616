"""The confidence calibration the server uses: `settings.confidence_file`, when it was fitted
for this model (search/calibration.py has the format).

A calibration maps one model's signals to its accuracy, so a file that names another model is
ignored (logged) and every confidence says `calibrated: false`. A file that exists but does not
parse stops the start: a misconfiguration, not a request's fault.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from search.calibration import CalibrationTable
from server.reasoning.router_table import same_model
from server.settings import Settings

log = logging.getLogger(__name__)


def load_confidence_table(settings: Settings) -> CalibrationTable | None:
    if not settings.confidence_file:
        return None
    path = Path(settings.confidence_file)
    if not path.is_file():
        log.info("no confidence calibration at %s: confidences are uncalibrated", path)
        return None
    try:
        table = CalibrationTable.from_json(json.loads(path.read_text()))
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ValueError(f"confidence file {path} is not a confidence calibration: {exc}; fix "
                         "it, refit it with `python -m benchmarks.calibrate_confidence`, or "
                         "pass --confidence-file ''") from exc
    if table.model is not None and not same_model(table.model, settings.model):
        log.warning("confidence calibration %s was fitted for %s, not %s: ignored (confidences "
                    "are uncalibrated)", path, table.model, settings.model)
        return None
    return table
