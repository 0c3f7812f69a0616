"""`safety`: a configurable policy of blocked patterns, globally and per API key.

Config (settings `verifier_config.safety`): {"blocked_patterns": [regex, ...],
"key_policies": {key_id: [regex, ...]}}. A step matching any applicable pattern scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from verifiers.protocol import ScoringContext, StepItem


class SafetyVerifier:
    name = "safety"

    def __init__(self, deps=None) -> None:
        config = (deps.config_for(self.name) if deps else {}) or {}
        self._blocked = [re.compile(p, re.IGNORECASE) for p in config.get("blocked_patterns", [])]
        self._per_key = {key: [re.compile(p, re.IGNORECASE) for p in patterns]
                         for key, patterns in (config.get("key_policies") or {}).items()}

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        patterns = self._blocked + self._per_key.get(context.api_key_id or "", [])
        return [0.0 if any(p.search(item.step) for p in patterns) else 1.0 for item in items]
