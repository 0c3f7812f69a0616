"""Fused symbolic steps (`reasoning.symbolic_steps`): beside each step the model wrote, the
step the symbolic engine computes from it (verifiers.physics.fusion: the same formula, computed
exactly on the known quantities) joins the candidates as a sibling, scored like any other. It
costs no generated tokens: its ids are its text encoded, as the model would read it."""

from __future__ import annotations

from collections.abc import Sequence

from search.problem import SearchProblem
from verifiers.physics.fusion import computed_step
from verifiers.physics.options import PhysicsOptions


def symbolic_steps(problem: SearchProblem, previous: Sequence[str],
                   steps: Sequence[str]) -> list[tuple[int, str]]:
    """(index in `steps`, computed step) for the steps the engine computes differently; one
    per distinct computed text, none already among `steps`."""
    try:
        options = PhysicsOptions().merged(problem.context.extra.get("physics"))
    except ValueError:  # refused at the API; a direct caller's bad options compute nothing
        return []
    out, seen = [], set(steps)
    for i, step in enumerate(steps):
        computed = computed_step(problem.question, previous, step, options)
        if computed is not None and computed not in seen:
            seen.add(computed)
            out.append((i, computed))
    return out


def step_text(problem: SearchProblem, text: str, final: bool) -> str:
    """The step as the model would write it: followed by the delimiter unless it ends the
    solution (a regex delimiter's first trigger)."""
    if final:
        return text
    delimiter = problem.delimiter
    return text + (delimiter.text if delimiter.pattern is None else delimiter.triggers[0])
