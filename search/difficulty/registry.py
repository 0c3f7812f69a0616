"""Difficulty estimators from the `deliberate.difficulty` entry-point group (built-ins included).

Factories are called with `verifiers.registry.VerifierDeps` (engine, per-estimator config,
adapter scope). One that fails to load is logged and skipped, as verifier plugins are.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from search.difficulty.protocol import DifficultyEstimator
from verifiers.registry import VerifierDeps

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deliberate.difficulty"


def discover_estimators(deps: VerifierDeps) -> dict[str, DifficultyEstimator]:
    estimators: dict[str, DifficultyEstimator] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in estimators:
            continue
        try:
            estimators[ep.name] = ep.load()(deps)
        except Exception:  # a broken plugin is skipped, never fatal
            logger.exception("difficulty plugin %r (%s) failed to load; skipped", ep.name,
                             ep.value)
    return estimators
