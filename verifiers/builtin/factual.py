"""`factual`: agreement of a step's claims with evidence (from the request or a configured corpus).

Evidence and steps are read as facts `key = value` (also `key: value`, `key is value`); keys and
values compare case- and space-insensitively. A step that restates a fact scores 1, one that
contradicts a fact (same key, other value) scores 0, and one the evidence says nothing about
scores `neutral` (config, default 1.0: no evidence is not a penalty unless you want it to be).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from verifiers.protocol import ScoringContext, StepItem

_FACT = re.compile(r"^\s*(.+?)\s*(?:=|:|\bis\b)\s*(.+?)\s*\.?\s*$", re.IGNORECASE)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def parse_facts(lines: Iterable[str]) -> dict[str, str]:
    facts = {}
    for line in lines:
        for sentence in re.split(r"[\n;]", line):
            match = _FACT.match(sentence)
            if match:
                facts[_norm(match.group(1))] = _norm(match.group(2))
    return facts


class FactualVerifier:
    name = "factual"

    def __init__(self, deps=None) -> None:
        config = (deps.config_for(self.name) if deps else {}) or {}
        corpus_lines = []
        for path in config.get("corpus_paths", []):
            corpus_lines.extend(Path(path).read_text().splitlines())
        self._corpus = parse_facts(corpus_lines)
        self._neutral = float(config.get("neutral", 1.0))

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        facts = {**self._corpus, **parse_facts(context.evidence)}
        return [self._score_step(item.step, facts) for item in items]

    def _score_step(self, step: str, facts: dict[str, str]) -> float:
        verdicts = [facts[key] == value for key, value in parse_facts([step]).items()
                    if key in facts]
        if not verdicts:
            return self._neutral
        return 1.0 if all(verdicts) else 0.0
