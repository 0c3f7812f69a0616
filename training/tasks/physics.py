"""Physics word problems in a fixed format: unit conversions and one-to-four-step mechanics and
circuits problems (`verifiers.physics.notation` reads and writes the format).

    Physics: m=2000 g, u=1 m/s, v=7 m/s, t=3 s. Find F in N.
    m=2000 g=2 kg
    a=(v-u)/t=(7-1)/3=2 m/s^2
    F=m*a=2*2=4 N
    Answer: 4 N

Difficulty k (1..4) is the number of steps before the Answer line; a conversion is a step.
Numbers are small whole numbers (the demo model is a 3M-parameter character model), drawn so
that every value in the worked solution is a whole number. The step checker accepts any step
that follows a rule of `verifiers.physics.rules` from quantities already known, with exact
numbers and consistent units, in any order; the exact checker reads the Answer line.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from search.answers import normalize
from training.tasks.base import Problem, draw_problems, states_answer
from verifiers.physics import expressions, laws, notation, rules, units
from verifiers.physics.options import PhysicsOptions
from verifiers.protocol import StepItem

__all__ = ["NAME", "LEVELS", "generate", "generate_worked", "solution", "check", "check_step",
           "still_solvable", "from_prompt", "split_steps"]

NAME = "physics"
LEVELS = range(1, 5)
MAX_VALUE = 10_000
MAX_FACTS = 40  # quantities forward chaining may derive before it gives up
EXACT = PhysicsOptions(tolerance=1e-9)
DIGITS = tuple(range(1, 10))
_NAMES = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True)
class Given:
    name: str
    unit: str
    choices: tuple[int, ...] = DIGITS


@dataclass(frozen=True)
class Template:
    given: tuple[Given, ...]
    # (name, formula, unit): a formula of known names, or None for a conversion of `name`
    steps: tuple[tuple[str, str | None, str], ...]
    conserve: str | None = None


def _g(name: str, unit: str, choices: tuple[int, ...] = DIGITS) -> Given:
    return Given(name, unit, choices)


G10 = _g("g", "m/s^2", (10,))
DROP_H = (5, 20, 45, 80)  # sqrt(2*10*h) is whole
GRAMS = tuple(range(1000, 10000, 1000))
CONVERSIONS = [(_g("d", "km"), "m"), (_g("t", "min"), "s"), (_g("t", "h", (1, 2, 3)), "min"),
               (_g("m", "g", GRAMS), "kg"), (_g("m", "kg"), "g"), (_g("d", "m"), "cm"),
               (_g("W", "kJ"), "J"), (_g("P", "kW"), "W"), (_g("F", "kN"), "N")]
TEMPLATES: dict[int, list[Template]] = {
    1: [Template((g,), (("x", None, unit),)) for g, unit in CONVERSIONS] + [
        Template((_g("u", "m/s"), _g("a", "m/s^2"), _g("t", "s")), (("v", "u+a*t", "m/s"),)),
        Template((_g("m", "kg"), _g("a", "m/s^2")), (("F", "m*a", "N"),)),
        Template((_g("I", "A"), _g("R", "ohm")), (("V", "I*R", "V"),)),
        Template((_g("m", "kg"), _g("v", "m/s")), (("p", "m*v", "kg*m/s"),)),
        Template((_g("F", "N"), _g("d", "m")), (("W", "F*d", "J"),)),
        Template((_g("m", "kg"), G10, _g("h", "m")), (("PE", "m*g*h", "J"),)),
        Template((_g("V", "V"), _g("I", "A")), (("P", "V*I", "W"),)),
        Template((_g("m", "kg", (2, 4, 6, 8)), _g("v", "m/s")), (("KE", "m*v^2/2", "J"),)),
        Template((_g("v", "m/s"), _g("t", "s")), (("d", "v*t", "m"),)),
        Template((_g("V", "V", tuple(range(2, 50))), _g("R", "ohm")), (("I", "V/R", "A"),)),
    ],
    2: [
        Template((_g("m", "kg"), _g("u", "m/s"), _g("v", "m/s", tuple(range(2, 30))),
                  _g("t", "s")), (("a", "(v-u)/t", "m/s^2"), ("F", "m*a", "N"))),
        Template((_g("V", "V", tuple(range(2, 90))), _g("R1", "ohm"), _g("R2", "ohm")),
                 (("R", "R1+R2", "ohm"), ("I", "V/R", "A"))),
        Template((_g("m1", "kg"), _g("u1", "m/s"), _g("m2", "kg"), _g("u2", "m/s", (0, 1, 2))),
                 (("p", "m1*u1+m2*u2", "kg*m/s"), ("v", "p/(m1+m2)", "m/s")), conserve="p"),
        Template((_g("F", "N"), _g("d", "m"), _g("t", "s")), (("W", "F*d", "J"),
                                                             ("P", "W/t", "W"))),
        Template((_g("m", "g", GRAMS), _g("a", "m/s^2")), (("m", None, "kg"),
                                                            ("F", "m*a", "N"))),
        Template((_g("v", "m/s"), _g("t", "min", (1, 2))), (("t", None, "s"), ("d", "v*t", "m"))),
        Template((_g("m", "kg"), _g("u", "m/s"), _g("a", "m/s^2"), _g("t", "s")),
                 (("v", "u+a*t", "m/s"), ("p", "m*v", "kg*m/s"))),
        Template((_g("m", "kg", (2, 4, 6, 8)), G10, _g("h", "m", DROP_H)),
                 (("E", "m*g*h", "J"), ("v", "sqrt(2*E/m)", "m/s")), conserve="E"),
    ],
    3: [
        Template((_g("m", "kg"), _g("u", "m/s"), _g("v", "m/s", tuple(range(2, 30))),
                  _g("t", "s"), _g("d", "m")),
                 (("a", "(v-u)/t", "m/s^2"), ("F", "m*a", "N"), ("W", "F*d", "J"))),
        Template((_g("V", "V", tuple(range(2, 90))), _g("R1", "ohm"), _g("R2", "ohm")),
                 (("R", "R1+R2", "ohm"), ("I", "V/R", "A"), ("P", "V*I", "W"))),
        Template((_g("m", "g", GRAMS), _g("u", "m/s"), _g("v", "m/s", tuple(range(2, 30))),
                  _g("t", "s")), (("m", None, "kg"), ("a", "(v-u)/t", "m/s^2"),
                                  ("F", "m*a", "N"))),
        Template((_g("m", "kg", (2, 4, 6, 8)), G10, _g("h", "m", DROP_H)),
                 (("E", "m*g*h", "J"), ("v", "sqrt(2*E/m)", "m/s"), ("p", "m*v", "kg*m/s")),
                 conserve="E"),
        Template((_g("m1", "kg"), _g("u1", "m/s"), _g("m2", "kg"), _g("u2", "m/s", (0, 1, 2)),
                  _g("t", "s")), (("p", "m1*u1+m2*u2", "kg*m/s"), ("v", "p/(m1+m2)", "m/s"),
                                  ("d", "v*t", "m")), conserve="p"),
    ],
    4: [
        Template((_g("m", "g", GRAMS), _g("u", "m/s"), _g("v", "m/s", tuple(range(2, 30))),
                  _g("t", "s"), _g("d", "m")),
                 (("m", None, "kg"), ("a", "(v-u)/t", "m/s^2"), ("F", "m*a", "N"),
                  ("W", "F*d", "J"))),
        Template((_g("V", "V", tuple(range(2, 90))), _g("R1", "ohm"), _g("R2", "ohm"),
                  _g("t", "s")),
                 (("R", "R1+R2", "ohm"), ("I", "V/R", "A"), ("P", "V*I", "W"),
                  ("W", "P*t", "J"))),
        Template((_g("m", "g", (2000, 4000, 6000, 8000)), G10, _g("h", "m", DROP_H)),
                 (("m", None, "kg"), ("E", "m*g*h", "J"), ("v", "sqrt(2*E/m)", "m/s"),
                  ("p", "m*v", "kg*m/s")), conserve="E"),
        Template((_g("m1", "kg"), _g("u1", "m/s"), _g("m2", "kg"), _g("u2", "m/s", (0, 1, 2)),
                  _g("t", "min", (1, 2))),
                 (("t", None, "s"), ("p", "m1*u1+m2*u2", "kg*m/s"), ("v", "p/(m1+m2)", "m/s"),
                  ("d", "v*t", "m")), conserve="p"),
    ],
}


def _draw(rng: random.Random, level: int) -> tuple[str, str, str]:
    """A prompt, its answer and its worked solution, all values whole and below MAX_VALUE."""
    ureg = notation.registry()
    template = rng.choice(TEMPLATES[level])
    while True:
        values = {g.name: rng.choice(g.choices) for g in template.given}
        if len(set(values.values())) < min(2, len(values)):
            continue  # x=3, y=3 reads ambiguously in the numbers link
        known = {g.name: ureg.Quantity(values[g.name], g.unit) for g in template.given}
        steps, ok = [], True
        for name, formula, unit in template.steps:
            name = template.given[0].name if name == "x" else name
            if formula is None:  # a conversion of a given quantity
                value = known[name].to(unit)
                line_head = f"{name}={_number(known[name].magnitude)} {_unit_of(template, name)}"
            else:
                value = units.recompute(formula, known).to(unit)
                numbers = _NAMES.sub(lambda m: m.group(0) if m.group(0) == "sqrt"
                                     else _number(known[m.group(0)].magnitude), formula)
                line_head = f"{name}={formula}={numbers}"
            magnitude = value.magnitude
            if abs(magnitude - round(magnitude)) > 1e-9 or not 0 < magnitude < MAX_VALUE:
                ok = False
                break
            known[name] = ureg.Quantity(round(magnitude), unit)
            steps.append(f"{line_head}={round(magnitude)} {unit}")
        if not ok:
            continue
        find, unit = (template.given[0].name if template.steps[-1][0] == "x"
                      else template.steps[-1][0]), template.steps[-1][2]
        given = [f"{g.name}={values[g.name]} {g.unit}" for g in template.given]
        if template.conserve:
            given.append(f"conserve {template.conserve}")
        answer = f"{known[find].magnitude} {unit}"
        return (f"Physics: {', '.join(given)}. Find {find} in {unit}.", answer,
                "\n".join(steps + [f"Answer: {answer}"]))


def _unit_of(template: Template, name: str) -> str:
    return next(g.unit for g in template.given if g.name == name)


def _number(value: float) -> str:
    return notation.format_number(value)


def generate(seed: int, count: int, difficulty: int | None = None) -> list[Problem]:
    return [p for p, _ in generate_worked(seed, count, difficulty)]


def generate_worked(seed: int, count: int, difficulty: int | None = None
                    ) -> list[tuple[Problem, str]]:
    """`count` problems with worked solutions, deterministic in (seed, difficulty); None draws
    each level uniformly."""
    return draw_problems(NAME, LEVELS, "steps", seed, count, difficulty, _draw)


def solution(problem: Problem) -> str:
    """A worked solution derived from the prompt alone (`solve`)."""
    steps = solve(problem.prompt)
    if steps is None:
        raise ValueError(f"no worked solution for {problem.prompt!r}")
    return "\n".join(steps)


def solve(prompt: str) -> list[str] | None:
    """Worked steps found by forward chaining over the rules: convert each given quantity not
    in SI units, then apply the first rule that yields an unknown quantity from known ones,
    until the asked quantity is known. None when the rules do not reach it."""
    problem = notation.read_problem(prompt)
    if problem is None:
        return None
    known, steps = {}, []
    for name, q in problem.given.items():
        base = q.to_base_units()
        if q.units != base.units and name != problem.find:
            steps.append(f"{name}={_number(q.magnitude)} {notation.unit_text(_given_text(prompt, name))}"
                         f"={_number(base.magnitude)} {notation.format_unit(base.units)}")
        known[name] = base
    if problem.find in known:
        value = known[problem.find].to(problem.find_unit)
        steps = [f"{problem.find}={_given_text(prompt, problem.find)}="
                 f"{_number(value.magnitude)} {problem.find_unit_text}"]
        return steps + [f"Answer: {_number(value.magnitude)} {problem.find_unit_text}"]
    for _ in range(MAX_FACTS):
        found = _next_fact(known)
        if found is None:
            return None
        name, formula, value = found
        numbers = _NAMES.sub(lambda m: m.group(0) if m.group(0) == "sqrt"
                             else _number(known[m.group(0)].magnitude), formula)
        unit = problem.find_unit_text if name == problem.find else notation.format_unit(
            value.units)
        value = value.to(problem.find_unit) if name == problem.find else value
        known[name] = value
        steps.append(f"{name}={formula}={numbers}={_number(value.magnitude)} {unit}")
        if name == problem.find:
            return steps + [f"Answer: {_number(value.magnitude)} {unit}"]
    return None


def _given_text(prompt: str, name: str) -> str:
    match = re.search(rf"(?:: |, ){re.escape(name)}=([^,]+?)(?:,|\. Find)", prompt)
    return match.group(1) if match else ""


def _next_fact(known: dict) -> tuple[str, str, object] | None:
    for rule_set in rules.RULE_SETS:
        for rule in rules.RULES[rule_set]:
            symbols = rules.vocabulary((rule_set,)) & {str(s) for s in
                                                      rules._equation(rule).free_symbols}
            unknown = [s for s in symbols if s not in known]
            if len(unknown) != 1:
                continue
            for solution in rules._solutions(rule, unknown[0]):
                formula = str(solution).replace("**", "^").replace(" ", "")
                value = units.recompute(formula, known)
                if value is not None and value.magnitude > 0:
                    return unknown[0], formula, value.to_reduced_units()
    return None


def from_prompt(prompt: str, id: str = "") -> Problem | None:
    """A Problem rebuilt from its prompt, its answer found by `solve`; None when the prompt is
    not of this format or the rules do not reach the answer."""
    steps = solve(prompt)
    if steps is None:
        return None
    answer = steps[-1].removeprefix("Answer: ")
    return Problem(id or f"{NAME}-prompt", NAME, prompt.strip(), answer,
                   min(max(len(steps) - 1, 1), max(LEVELS)))


def split_steps(completion: str) -> list[str]:
    """Non-empty lines, stripped, up to and including the first Answer line."""
    steps = []
    for line in completion.split("\n"):
        line = line.strip()
        if line:
            steps.append(line)
        if line.startswith("Answer:"):
            break
    return steps


def check(problem: Problem, completion: str) -> bool:
    """Correct when the Answer line states the answer: the same number in the same unit."""
    return states_answer(completion, problem.answer)


def check_step(problem: Problem, previous_steps: list[str], step: str) -> bool:
    """Is `step` valid after `previous_steps` (False whenever an earlier one was not)? A valid
    step is a rule's formula on known quantities, or a conversion of a given one, with every
    number exact and every unit consistent; or the Answer line with the answer."""
    previous = [s.strip() for s in previous_steps]
    if any(not _valid(problem, previous[:i], s) for i, s in enumerate(previous)):
        return False
    return _valid(problem, previous, step.strip())


def _valid(problem: Problem, previous: list[str], step: str) -> bool:
    if any(s.startswith("Answer:") for s in previous):
        return False  # nothing follows the Answer line
    if step.startswith("Answer:"):
        return normalize(step.removeprefix("Answer:")) == normalize(problem.answer)
    parsed = notation.read_step(step)
    physics = notation.read_problem(problem.prompt)
    if parsed is None or physics is None or parsed.unreadable or parsed.stated is None:
        return False
    item = StepItem(problem.prompt, (*previous, step))
    if units.score_item(item, EXACT) < 1 or laws.score_item(item, EXACT) < 1:
        return False
    known = notation.known_quantities(physics, previous)
    formula = parsed.formula
    if formula is None:  # a conversion restates a given quantity
        return parsed.name in physics.given and len(parsed.links) >= 2
    try:
        used = expressions.names(formula)
    except expressions.Unreadable:
        return False
    return (used <= set(known) and rules.matching_rule(parsed.name, formula, rules.RULE_SETS)
            is not None)


def still_solvable(problem: Problem, steps: list[str]) -> bool:
    """After valid steps the answer can always still be reached: no step is a dead end."""
    return all(check_step(problem, steps[:i], s) for i, s in enumerate(steps))
