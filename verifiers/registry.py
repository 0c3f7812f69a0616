"""Verifier discovery from the `deliberate.verifiers` entry-point group (built-ins included).

Each entry point names a factory (usually the class) called with `VerifierDeps`. A plugin that
fails to import or to construct is logged and skipped: one broken plugin never stops the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from verifiers.protocol import Verifier

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deliberate.verifiers"


@dataclass(frozen=True)
class VerifierDeps:
    """What factories may use: the engine (for model-based verifiers), per-verifier config, and
    `adapter_scope(name)`, an async context manager that keeps a reward-model adapter loaded
    while it scores (the server's adapter registry provides it)."""

    engine: Any = None
    config: dict[str, dict] = field(default_factory=dict)
    adapter_scope: Any = None

    def config_for(self, name: str) -> dict:
        return self.config.get(name, {})


@dataclass
class VerifierRegistry:
    verifiers: dict[str, Verifier]
    skipped: dict[str, str]  # name -> why it was not loaded

    def get(self, name: str) -> Verifier:
        return self.verifiers[name]

    def names(self) -> list[str]:
        return sorted(self.verifiers)

    def add(self, name: str, verifier: Verifier) -> None:
        """A verifier configured by name (a reward model of the ecosystem) beside the plugins."""
        if name in self.verifiers or name in self.skipped:
            raise ValueError(f"verifier name {name!r} is taken by an installed plugin; give "
                             "the reward model another name")
        self.verifiers[name] = verifier


def discover(deps: VerifierDeps, allowlist: set[str] | None = None) -> VerifierRegistry:
    verifiers: dict[str, Verifier] = {}
    skipped: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowlist is not None and ep.name not in allowlist:
            continue
        try:
            verifier = ep.load()(deps)
        except Exception as exc:  # a broken plugin of any kind is skipped, not fatal
            logger.exception("verifier plugin %r (%s) failed to load; skipped", ep.name, ep.value)
            skipped[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if ep.name in verifiers:
            logger.warning("verifier %r registered twice; keeping the first", ep.name)
            continue
        verifiers[ep.name] = verifier
    return VerifierRegistry(verifiers=verifiers, skipped=skipped)
