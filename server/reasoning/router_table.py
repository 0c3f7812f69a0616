"""The router table the server uses: `settings.router_file`, when it was fitted for this model.

Fitted thresholds are a property of one model, its difficulty estimator and its verifiers, so a
file that names another model is ignored (logged), and explicit `--router-low` / `--router-high`
override it. A file that exists but does not parse stops the start: a misconfiguration, not a
request's fault.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from search.router import RouterTable, Thresholds
from server.settings import Settings

log = logging.getLogger(__name__)


def default_thresholds(settings: Settings) -> Thresholds:
    default = Thresholds()
    return Thresholds(default.low if settings.router_low is None else settings.router_low,
                      default.high if settings.router_high is None else settings.router_high)


def load_router_table(settings: Settings) -> RouterTable | None:
    if not settings.router_file or settings.router_low is not None \
            or settings.router_high is not None:
        return None
    path = Path(settings.router_file)
    if not path.is_file():
        log.info("no router table at %s: auto routes with the default thresholds", path)
        return None
    try:
        data = json.loads(path.read_text())
        table = RouterTable.from_json(data)
    except ValueError as exc:
        raise ValueError(f"router file {path} is not a router table: {exc}; fix it or pass "
                         "--router-file ''") from exc
    fitted_for = data.get("model")
    if fitted_for is not None and not same_model(fitted_for, settings.model):
        log.info("router table %s was fitted for %s, not %s: ignored (auto routes with the "
                    "default thresholds)", path, fitted_for, settings.model)
        return None
    return table


def same_model(a: str, b: str) -> bool:
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b
