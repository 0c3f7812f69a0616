"""`safety`: a policy of blocked patterns for everyone, per API key name and per `user`.

The same policy scores search steps here (a blocked step scores 0, pruning its branch) and, in
the server, screens every answer (server/safety.py). Its source is a file the admin can reload
(`--safety-policy-file`, `PolicyFile`), or this verifier's inline config:

    blocked: [regex | {pattern: regex, reason: text}, ...]          # everyone
    keys: {api_key_name: {blocked: [...]}, ...}                        # per tenant (--api-keys)
    users: {user: {blocked: [...]}, ...}                               # per request `user`

(The older inline form {"blocked_patterns": [...], "key_policies": {name: [...]}} still works.)
Patterns are case-insensitive regular expressions (`regex`, which can stop a match: a pattern
that backtracks without end on some text blocks that text instead of hanging the request).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import regex
import yaml

from verifiers.protocol import ScoringContext, StepItem

logger = logging.getLogger(__name__)

# One check of a text against every rule that applies, in CPU seconds of this process (what
# `regex` counts); past it the text is blocked: a policy that cannot say a text is allowed does
# not let it out.
MATCH_TIMEOUT_S = 0.25
SLOW_POLICY_REASON = (f"withheld: the safety policy could not check this text within "
                      f"{MATCH_TIMEOUT_S} s")


@dataclass(frozen=True)
class Rule:
    pattern: regex.Pattern
    reason: str


@dataclass(frozen=True)
class SafetyPolicy:
    everyone: tuple[Rule, ...] = ()
    keys: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    users: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping | None) -> SafetyPolicy:
        """Raises ValueError naming the entry that is wrong."""
        data = data or {}
        if not isinstance(data, Mapping):
            raise ValueError("a safety policy is a mapping with `blocked`, `keys` and `users`")
        everyone = _rules(data.get("blocked", data.get("blocked_patterns", [])), "blocked",
                          "the safety policy")
        keys = {name: _rules(_blocked(entry), f"keys.{name}", f"the policy of API key {name!r}")
                for name, entry in _mapping(data, "keys", "key_policies").items()}
        users = {name: _rules(_blocked(entry), f"users.{name}", f"the policy of user {name!r}")
                 for name, entry in _mapping(data, "users").items()}
        return cls(everyone, keys, users)

    def check(self, text: str, key: str | None = None, user: str | None = None,
              start: int = 0) -> str | None:
        """The reason the first matching rule gives, or None when `text` may pass. Only
        matches that begin at `start` or after count (what comes before it is still context
        for anchors and lookbehinds), so a stream's growing text is scanned from near its end."""
        rules = (*self.everyone, *self.keys.get(key or "", ()), *self.users.get(user or "", ()))
        if not rules:  # no policy: every answer (and a stream's every delta) asks
            return None
        deadline = time.process_time() + MATCH_TIMEOUT_S
        for rule in rules:
            try:
                found = rule.pattern.search(text, start,
                                            timeout=max(deadline - time.process_time(), 1e-6))
            except TimeoutError:
                logger.warning("safety rule %r (%s) took over %s s on %d characters: the text "
                               "is blocked; simplify the pattern", rule.pattern.pattern,
                               rule.reason, MATCH_TIMEOUT_S, len(text) - start)
                return SLOW_POLICY_REASON
            if found:
                return rule.reason
        return None

    @property
    def size(self) -> dict[str, int]:
        return {"rules": len(self.everyone) + sum(map(len, self.keys.values()))
                + sum(map(len, self.users.values())),
                "keys": len(self.keys), "users": len(self.users)}


def load_policy(path: str | Path) -> SafetyPolicy:
    """A policy file: YAML, or JSON (a subset of YAML). Raises ValueError saying what is wrong."""
    try:
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the safety policy {str(path)!r}: {exc}") from exc
    return SafetyPolicy.from_dict(data)


class PolicyFile:
    """The policy in a file, read at start-up and again on `reload` (a bad file keeps the
    policy in force and raises ValueError)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.policy = load_policy(self.path)

    def reload(self) -> SafetyPolicy:
        self.policy = load_policy(self.path)
        return self.policy


class StaticPolicy:
    def __init__(self, policy: SafetyPolicy) -> None:
        self.policy = policy


class SafetyVerifier:
    name = "safety"

    def __init__(self, deps=None) -> None:
        config = (deps.config_for(self.name) if deps else {}) or {}
        # the server hands the verifier its own (reloadable) policy source
        self._source = config.get("source") or StaticPolicy(SafetyPolicy.from_dict(config))

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        policy = self._source.policy
        return [0.0 if policy.check(item.step, context.api_key_id, context.user) else 1.0
                for item in items]


def _mapping(data: Mapping, *names: str) -> Mapping:
    value = next((data[n] for n in names if n in data), None) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"safety policy: `{names[0]}` maps names to policies")
    return value


def _blocked(entry) -> list:
    return entry.get("blocked", []) if isinstance(entry, Mapping) else entry


def _rules(entries, where: str, whose: str) -> tuple[Rule, ...]:
    if not isinstance(entries, list):
        raise ValueError(f"safety policy: `{where}` is a list of patterns")
    rules = []
    for i, entry in enumerate(entries):
        pattern, reason = ((entry.get("pattern"), entry.get("reason"))
                           if isinstance(entry, Mapping) else (entry, None))
        try:
            compiled = regex.compile(pattern, regex.IGNORECASE)
        except (regex.error, TypeError) as exc:
            raise ValueError(f"safety policy: `{where}[{i}]` is not a regular expression: "
                             f"{exc}") from exc
        rules.append(Rule(compiled, str(reason) if reason else f"blocked by {whose}"))
    return tuple(rules)
