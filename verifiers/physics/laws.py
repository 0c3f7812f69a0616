"""`physics`: does a step's formula follow the rules, and are declared conserved quantities
conserved?

- 0 when a step's formula relates quantities the rules know by no rule of the request's rule
  sets (`v=u+a` for a velocity; `F=m/a`), when a restated quantity changes dimension (a
  conversion), or when a quantity the problem declares conserved (`conserve p`) is stated with
  a value other than the one stated before (p, p1, p2, pi, pf are one quantity);
- 1 otherwise, and for steps, formulas and problems it cannot read or the rules do not cover.
Numbers are the `units` verifier's concern. Exact and cheap (cost 0).
"""

from __future__ import annotations

import re

from verifiers.physics import notation, rules
from verifiers.physics.options import OptionsVerifier, PhysicsOptions
from verifiers.physics.units import _closeness
from verifiers.protocol import StepItem


class PhysicsVerifier(OptionsVerifier):
    name = "physics"

    def score_item(self, item: StepItem, options: PhysicsOptions) -> float:
        return score_item(item, options)


def score_item(item: StepItem, options: PhysicsOptions = PhysicsOptions()) -> float:
    try:
        return 1.0 if _follows(item, options) else 0.0
    except Exception:  # noqa: BLE001 -- a step this cannot read is not judged, never an error
        return 1.0


def _follows(item: StepItem, options: PhysicsOptions) -> bool:
    problem = notation.read_problem(item.problem)
    step = notation.read_step(item.step) if item.steps else None
    if problem is None or step is None:
        return True
    formula = step.formula
    if formula is not None and rules.judged(step.name, formula, options.rules):
        if rules.matching_rule(step.name, formula, options.rules) is None:
            return False
    stated = step.stated
    if "conversion" in options.rules and formula is None and step.name in problem.given:
        given = problem.given[step.name]
        if any(link.quantity.dimensionality != given.dimensionality
               for link in step.links if link.quantity is not None):
            return False
    if stated is None:
        return True
    for name in problem.conserved:
        if not same_quantity(step.name, name):
            continue
        before = [s.stated for s in map(notation.read_step, item.steps[:-1])
                  if s is not None and s.stated is not None and same_quantity(s.name, name)]
        for value in before:
            if value.dimensionality != stated.dimensionality or _closeness(
                    stated.to(value.units).magnitude, value.magnitude, options.tolerance) < 1:
                return False
    return True


def same_quantity(name: str, conserved: str) -> bool:
    """`p1`, `pf`, `p_after` are states of the conserved `p`."""
    return re.fullmatch(re.escape(conserved) + r"(?:\d+|[if0]|_\w+)?", name) is not None
