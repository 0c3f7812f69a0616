"""The formula library, by rule set: which formulas relate which quantities.

A step `name=formula` follows a rule when solving the rule's equation for `name` gives the
formula (sympy, positive quantities): `a=(v-u)/t` follows `v=u+a*t`. Names are the format's
symbols: u, v (velocities), a, t, d (distance), F, m, g, h, E/KE/PE (energies), W (work),
P (power), p (momentum), V, I, R (voltage, current, resistance); 1 and 2 tell two bodies or
resistors apart.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from verifiers.physics import expressions

RULES: dict[str, tuple[str, ...]] = {
    # Each rule is "left=right" in the format's notation.
    "kinematics": ("v=u+a*t", "d=u*t+a*t^2/2", "v^2=u^2+2*a*d", "d=(u+v)*t/2", "d=v*t"),
    "newton": ("F=m*a",),
    "energy": ("KE=m*v^2/2", "PE=m*g*h", "W=F*d", "P=W/t", "E=m*g*h", "E=m*v^2/2", "KE=PE",
               "E=KE+PE"),
    "momentum": ("p=m*v", "p=m1*u1+m2*u2", "p=(m1+m2)*v"),
    "circuits": ("V=I*R", "P=V*I", "P=I^2*R", "R=R1+R2"),
    # Unit conversion has no formula: a restated quantity keeps its dimension and value.
    "conversion": (),
}
RULE_SETS = tuple(RULES)


def validate(rule_sets: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The rule sets, checked: ValueError naming the unknown ones and the known ones."""
    unknown = sorted(set(rule_sets) - set(RULES))
    if unknown:
        raise ValueError(f"unknown physics rule set(s) {unknown}; choose from {list(RULE_SETS)}")
    if not rule_sets:
        raise ValueError(f"name at least one physics rule set of {list(RULE_SETS)}")
    return tuple(rule_sets)


@lru_cache(maxsize=None)
def _equation(rule: str) -> sympy.Expr:
    left, right = rule.split("=")
    return expressions.symbolic(left) - expressions.symbolic(right)


@lru_cache(maxsize=None)
def vocabulary(rule_sets: tuple[str, ...]) -> frozenset[str]:
    return frozenset(str(s) for name in rule_sets for rule in RULES[name]
                     for s in _equation(rule).free_symbols)


@lru_cache(maxsize=None)
def _solutions(rule: str, name: str) -> tuple[sympy.Expr, ...]:
    symbol = sympy.Symbol(name, positive=True)
    equation = _equation(rule)
    if symbol not in equation.free_symbols:
        return ()
    return tuple(sympy.solve(equation, symbol))


@lru_cache(maxsize=4096)
def matching_rule(name: str, formula: str, rule_sets: tuple[str, ...]) -> str | None:
    """The rule `name=formula` follows, or None. Unreadable formulas raise Unreadable."""
    expr = expressions.symbolic(formula)
    for rule_set in rule_sets:
        for rule in RULES[rule_set]:
            for solution in _solutions(rule, name):
                if sympy.simplify(solution - expr) == 0:
                    return rule
    return None


def judged(name: str, formula: str, rule_sets: tuple[str, ...]) -> bool:
    """Whether the rules speak about this formula at all: its name and every quantity it uses
    are symbols of the rule sets' formulas (a formula of other quantities is not judged)."""
    try:
        used = expressions.names(formula)
    except expressions.Unreadable:
        return False
    return {name, *used} <= vocabulary(rule_sets)
