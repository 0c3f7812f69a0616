"""The physics verifiers' options: from the server's `--verifier-config` (per verifier) and per
request (`physics` in `reasoning` or in /v1/verify, read from ScoringContext.extra["physics"]).

    tolerance    relative error a recomputed number may have and still count as right, in
                 (0, 1]; default 0.01
    unit_system  pint's system for values the symbolic engine writes when no unit is named
                 (SI, mks, cgs, imperial, US, atomic, Planck); default SI
    rules        the rule sets a formula must follow (verifiers.physics.rules); default all
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from verifiers.physics import rules
from verifiers.physics.notation import registry
from verifiers.protocol import ScoringContext, StepItem

FIELDS = ("tolerance", "unit_system", "rules")


@dataclass(frozen=True)
class PhysicsOptions:
    tolerance: float = 0.01
    unit_system: str = "SI"
    rules: tuple[str, ...] = rules.RULE_SETS

    def merged(self, overrides: Mapping | None) -> PhysicsOptions:
        """These options with `overrides` applied; ValueError saying what to change."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ValueError("physics options are an object: {\"tolerance\": 0.01, "
                             "\"unit_system\": \"SI\", \"rules\": [...]}")
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown physics option(s) {unknown}; known: {list(FIELDS)}")
        changed = {k: v for k, v in overrides.items() if v is not None}
        if "tolerance" in changed:
            changed["tolerance"] = tolerance(changed["tolerance"])
        if "unit_system" in changed:
            changed["unit_system"] = unit_system(changed["unit_system"])
        if "rules" in changed:
            value = changed["rules"]
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError("physics rules is a list of rule set names, e.g. "
                                 "[\"kinematics\", \"newton\"]")
            changed["rules"] = rules.validate(tuple(value))
        return replace(self, **changed)


def tolerance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
            or not 0 < value <= 1:
        raise ValueError(f"physics tolerance must be a relative error in (0, 1], e.g. 0.01; "
                         f"got {value!r}")
    return float(value)


def unit_system(name: object) -> str:
    systems = sorted(registry()._systems)  # pint lists its systems only here
    if name not in systems:
        raise ValueError(f"unknown unit system {name!r}; choose one of {systems}")
    return str(name)


def from_config(config: Mapping | None) -> PhysicsOptions:
    return PhysicsOptions().merged(config)


class OptionsVerifier:
    """What the physics verifiers share: their options from --verifier-config under their name,
    merged with a request's `physics` options, and each step scored on its own
    (`score_item`, the subclass's)."""

    name: str
    exact = True
    cost = 0

    def __init__(self, deps=None) -> None:
        self.options = from_config(deps.config_for(self.name) if deps else None)

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        options = self.options.merged(context.extra.get("physics"))
        return [self.score_item(item, options) for item in items]

    def score_item(self, item: StepItem, options: PhysicsOptions) -> float:
        raise NotImplementedError
