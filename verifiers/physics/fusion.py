"""The symbolic engine's own step: a stated formula computed on the known quantities.

Given a step the model wrote (`F=m*a=2*3=5 N`), `computed_step` returns the step with the same
formula computed exactly (`F=m*a=2*3=6 N`): the numbers are the known quantities in base units,
the value is in the unit the model wrote (else the asked unit, else the unit system's base
units). A conversion of a given quantity is recomputed the same way, and an Answer line is
restated from the asked quantity once a step has computed it. None when there is nothing to
compute (inputs unknown, a dimension error, a step it cannot read) or the model's step is
already exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pint

from verifiers.physics import expressions, notation
from verifiers.physics.options import PhysicsOptions
from verifiers.physics.units import recompute


def computed_step(question: str, previous: Sequence[str], step: str,
                  options: PhysicsOptions = PhysicsOptions()) -> str | None:
    try:
        text = _computed(question, list(previous), step.strip(), options)
    except Exception:  # noqa: BLE001 -- nothing to compute is not an error
        return None
    return text if text is not None and text != step.strip() else None


def _computed(question: str, previous: list[str], step: str,
              options: PhysicsOptions) -> str | None:
    problem = notation.read_problem(question)
    if problem is None:
        return None
    known = notation.known_quantities(problem, previous)
    if notation.read_answer(step) is not False:
        value = known.get(problem.find)
        if value is None or value.dimensionality != problem.find_unit.dimensionality:
            return None
        return f"Answer: {notation.format_number(value.to(problem.find_unit).magnitude)} " \
               f"{problem.find_unit_text}"
    parsed = notation.read_step(step)
    if parsed is None:
        return None
    quantities = [link for link in parsed.links if link.quantity is not None]
    unit_text = notation.unit_text(quantities[-1].text) if quantities else None
    if unit_text is None and parsed.name == problem.find:
        unit_text = problem.find_unit_text
    formula = parsed.formula
    if formula is None:  # a conversion of a given quantity
        given = problem.given.get(parsed.name)
        if given is None or unit_text is None or len(quantities) < 2:
            return None
        value = given.to(notation.unit(unit_text))
        return f"{parsed.name}={quantities[0].text}={notation.format_number(value.magnitude)} " \
               f"{unit_text}"
    try:
        value = recompute(formula, known)
    except pint.errors.DimensionalityError:
        return None  # a formula in error has no value to offer
    if value is None:
        return None
    value, unit_text = _expressed(value, unit_text, options.unit_system)
    numbers = expressions.substitute(
        formula, {name: notation.format_number(q.to_base_units().magnitude)
                  for name, q in known.items()})
    return f"{parsed.name}={formula}={numbers}={notation.format_number(value)} {unit_text}"


def _expressed(value: Any, unit_text: str | None, system: str) -> tuple[float, str]:
    """The value's magnitude in the written unit when it has the value's dimension, else in
    the unit system's base units."""
    target = notation.unit(unit_text) if unit_text else None
    if target is not None and (1 * target).dimensionality == value.dimensionality:
        return value.to(target).magnitude, unit_text  # type: ignore[return-value]
    factor, units = notation.registry().get_base_units(value.units, system=system)
    return value.magnitude * factor, notation.format_unit(units)
