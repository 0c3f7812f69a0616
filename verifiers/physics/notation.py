"""The physics format: problems, steps and answers as text, read into pint quantities.

    Physics: m=2 kg, u=1 m/s, v=7 m/s, t=3 s. Find F in N.
    a=(v-u)/t=(7-1)/3=2 m/s^2          a step: name=formula=numbers=value unit
    F=m*a=2*2=4 N
    Answer: 4 N

A given item may also declare a conserved quantity (`conserve p`): every value the solution
states for p (or p1, p2, ...) must agree. A step's chain may hold any of: the formula, the
numbers put into it, quantities with units (`2000 g=2 kg`); its last link is the value with its
unit. Nothing here raises on text it cannot read: it returns None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pint

from verifiers.physics import expressions

PROBLEM = re.compile(r"^Physics: (?P<given>.+?)\. Find (?P<find>[A-Za-z][A-Za-z0-9]*) in "
                     r"(?P<unit>[A-Za-z][\w/^*]*)\.?$")
GIVEN = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)=(?P<quantity>.+)$")
CONSERVE = re.compile(r"^conserve (?P<name>[A-Za-z][A-Za-z0-9]*)$")
QUANTITY = re.compile(r"^(?P<number>[^A-Za-z]*?\d[^A-Za-z]*?)\s+(?P<unit>[A-Za-z][\w/^*]*)$")
ANSWER = re.compile(r"^Answer:\s*(?P<quantity>.+?)\s*$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
MAX_STEP = 300  # characters: a longer line is not a step of this format


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """One pint registry for the process (building one takes a fraction of a second)."""
    return pint.UnitRegistry()


def unit(text: str) -> Any | None:
    """A pint unit, or None when the text names no unit pint knows."""
    try:
        parsed = registry().parse_units(text.replace("^", "**"))
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, SyntaxError,
            AssertionError, KeyError):
        return None
    return parsed


def quantity(text: str) -> Any | None:
    """`3 km`, `(7-1)/3 m/s^2`: a pint quantity, or None."""
    match = QUANTITY.match(text.strip())
    if not match:
        return None
    found = unit(match.group("unit"))
    if found is None or not expressions.is_numeric(match.group("number")):
        return None
    try:
        value = expressions.evaluate(match.group("number"), {})
    except (ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None
    return registry().Quantity(value, found)


@dataclass(frozen=True)
class PhysicsProblem:
    given: dict[str, Any]  # name -> pint quantity
    find: str
    find_unit: Any  # pint unit
    find_unit_text: str
    conserved: tuple[str, ...] = ()


def read_problem(text: str) -> PhysicsProblem | None:
    match = PROBLEM.match(text.strip())
    if not match:
        return None
    find_unit = unit(match.group("unit"))
    if find_unit is None:
        return None
    given, conserved = {}, []
    for item in match.group("given").split(","):
        item = item.strip()
        if (c := CONSERVE.match(item)) is not None:
            conserved.append(c.group("name"))
            continue
        g = GIVEN.match(item)
        value = quantity(g.group("quantity")) if g else None
        if value is None:
            return None
        given[g.group("name")] = value
    return PhysicsProblem(given, match.group("find"), find_unit, match.group("unit"),
                          tuple(conserved))


@dataclass(frozen=True)
class Link:
    """One link of a step's chain: exactly one of `formula`, `numbers`, `quantity` is set."""

    text: str
    formula: str | None = None  # names quantities
    numbers: str | None = None  # numbers only (the formula with values put in)
    quantity: Any | None = None  # a number with a unit


@dataclass(frozen=True)
class Step:
    name: str
    links: tuple[Link, ...]
    unreadable: tuple[str, ...] = field(default=())  # links of no kind known here

    @property
    def stated(self) -> Any | None:
        """The value the step arrives at: its last quantity."""
        return next((link.quantity for link in reversed(self.links)
                     if link.quantity is not None), None)

    @property
    def formula(self) -> str | None:
        return next((link.formula for link in self.links if link.formula is not None), None)


def read_step(text: str) -> Step | None:
    """A step of the format, or None (the Answer line, or text of another form)."""
    text = text.strip()
    if len(text) > MAX_STEP or "=" not in text or ANSWER.match(text):
        return None
    name, *rest = [part.strip() for part in text.split("=")]
    if not NAME.match(name) or not rest:
        return None
    links, unreadable = [], []
    for part in rest:
        link = _link(part)
        if link is None:
            unreadable.append(part)
        else:
            links.append(link)
    return Step(name, tuple(links), tuple(unreadable))


def _link(text: str) -> Link | None:
    if (q := quantity(text)) is not None:
        return Link(text, quantity=q)
    try:
        used = expressions.names(text)
    except expressions.Unreadable:
        return None
    return Link(text, formula=text) if used else Link(text, numbers=text)


def read_answer(text: str) -> Any | None | bool:
    """The Answer line's quantity; False when the line is not an Answer line, None when it is
    one whose quantity cannot be read."""
    match = ANSWER.match(text.strip())
    if not match:
        return False
    return quantity(match.group("quantity"))


def known_quantities(problem: PhysicsProblem, steps: list[str]) -> dict[str, Any]:
    """What is known before the next step: the given quantities, then each earlier step's
    stated value under its name (a later statement replaces an earlier one)."""
    known = dict(problem.given)
    for text in steps:
        step = read_step(text)
        if step is not None and step.stated is not None:
            known[step.name] = step.stated
    return known


def format_number(value: float) -> str:
    """As the format writes numbers: whole numbers without a point, else 6 significant digits."""
    rounded = round(value)
    if abs(value - rounded) <= 1e-9 * max(1.0, abs(value)):
        return str(int(rounded))
    return f"{value:.6g}"


def unit_text(quantity_text: str) -> str | None:
    """The unit as a quantity's text writes it (`m/s^2` of `2 m/s^2`)."""
    match = QUANTITY.match(quantity_text.strip())
    return match.group("unit") if match else None


def format_unit(u: Any) -> str:
    """A pint unit in the format's ASCII notation (`m/s^2`, `kg*m/s`, `ohm`)."""
    return f"{u:~C}".replace("**", "^").replace("Ω", "ohm")
