"""`units`: dimensional analysis of a physics step (pint), and its numbers recomputed.

- 0 for a dimensional inconsistency: a formula adding metres to seconds, links of one step in
  different dimensions (`v=a*t=6 m`), a restated quantity in another dimension, an answer in a
  dimension other than the one asked for, or an Answer line with no quantity it can read where
  a problem it reads asks for one with a unit (`Answer: 8`, `Answer: 8 v`: the final answer is
  the one step that must state the quantity asked, and searches otherwise kept such answers);
- a soft score (0.05-0.5, falling with the error) for a number off from its own recomputation
  (the formula evaluated on the known quantities, or a conversion) by more than the tolerance;
- 1 for a consistent step; 1 (neutral) for a step or a problem it cannot read.
Exact and cheap (cost 0).
"""

from __future__ import annotations

from typing import Any

import pint

from verifiers.physics import expressions, notation
from verifiers.physics.options import OptionsVerifier, PhysicsOptions
from verifiers.protocol import StepItem

SOFT_FLOOR = 0.05  # a wrong number is wrong, but not certainly: search may still need the path
SOFT_CAP = 0.5  # just past the tolerance


class UnitsVerifier(OptionsVerifier):
    name = "units"

    def score_item(self, item: StepItem, options: PhysicsOptions) -> float:
        return score_item(item, options)


def score_item(item: StepItem, options: PhysicsOptions = PhysicsOptions()) -> float:
    try:
        return _score(item, options)
    except (pint.errors.DimensionalityError, pint.errors.OffsetUnitCalculusError):
        return 0.0
    except Exception:  # noqa: BLE001 -- a step this cannot read is not judged, never an error
        return 1.0


def _score(item: StepItem, options: PhysicsOptions) -> float:
    problem = notation.read_problem(item.problem)
    if problem is None or not item.steps:
        return 1.0
    known = notation.known_quantities(problem, list(item.steps[:-1]))
    answer = notation.read_answer(item.step)
    if answer is not False:
        if answer is None:  # no quantity read: wrong unless the quantity asked has none
            return 1.0 if problem.find_unit.dimensionless else 0.0
        if answer.dimensionality != problem.find_unit.dimensionality:
            return 0.0
        return closeness(answer, known.get(problem.find), options.tolerance)
    step = notation.read_step(item.step)
    if step is None:
        return 1.0
    dimensions = []
    if step.name in known:
        dimensions.append(known[step.name].dimensionality)
    elif step.name == problem.find:
        dimensions.append(problem.find_unit.dimensionality)
    recomputed = None
    for link in step.links:
        if link.quantity is not None:
            dimensions.append(link.quantity.dimensionality)
        elif link.formula is not None:
            value = recompute(link.formula, known)  # raises DimensionalityError: caught above
            if value is not None:
                dimensions.append(value.dimensionality)
                recomputed = recomputed if recomputed is not None else value
    if any(d != dimensions[0] for d in dimensions):
        return 0.0
    return numbers_score(step, recomputed, options.tolerance)


def recompute(formula: str, known: dict[str, Any]) -> Any | None:
    """The formula's value on the known quantities (a pint quantity); None when it uses a
    quantity not known yet. A dimension error raises pint's DimensionalityError."""
    try:
        value = expressions.evaluate(formula, known, sqrt=lambda q: q ** 0.5)
    except (KeyError, ZeroDivisionError, OverflowError):
        return None
    if not isinstance(value, notation.registry().Quantity):
        value = notation.registry().Quantity(value)
    return value


def numbers_score(step: notation.Step, recomputed: Any | None, tolerance: float) -> float:
    """The lowest closeness of the step's numbers to the reference: the formula's recomputed
    value, else the first quantity the chain states (a conversion keeps the value)."""
    quantities = [link.quantity for link in step.links if link.quantity is not None]
    reference = recomputed if recomputed is not None else (quantities[0] if quantities else None)
    if reference is None:
        return 1.0
    score = min((closeness(q, reference, tolerance) for q in quantities), default=1.0)
    stated = step.stated
    for link in step.links:
        if link.numbers is None:
            continue
        try:
            value = float(expressions.evaluate(link.numbers, {}))
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            continue
        # The numbers are in the units the inputs were given in: read them in the stated unit
        # or in base units, whichever fits (neither: the soft score of the nearer).
        readings = [reference.to_base_units().magnitude]
        if stated is not None:
            readings.append(reference.to(stated.units).magnitude)
        score = min(score, max(_closeness(value, r, tolerance) for r in readings))
    return score


def closeness(value: Any, reference: Any | None, tolerance: float) -> float:
    """1 within the tolerance, else soft; 1 without a reference; 0 in another dimension."""
    if reference is None:
        return 1.0
    if value.dimensionality != reference.dimensionality:
        return 0.0
    return _closeness(value.to(reference.units).magnitude, reference.magnitude, tolerance)


def _closeness(value: float, reference: float, tolerance: float) -> float:
    error = abs(value - reference) / max(abs(reference), 1e-12)
    if error <= tolerance:
        return 1.0
    return max(SOFT_FLOOR, min(SOFT_CAP, tolerance / error))
