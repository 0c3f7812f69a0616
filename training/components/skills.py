"""What an adapter declares it is good at, written into its manifest (`skills`) for the server's
swarm (`search.swarm.router.DeclaredRouter` reads it): the task families of its generated
training data, a free-text description (`--skills`), and example questions of each family."""

from __future__ import annotations

from collections.abc import Sequence

EXAMPLES_PER_FAMILY = 2
EXAMPLE_SEED = 0  # examples show the format; any seed does


def declared_skills(task_selectors: Sequence[str | None], description: str = "") -> dict:
    """`task_selectors`: the datasets' task selectors (`arithmetic/6-8`, `countdown`; None for
    a file), in the order given; families are listed once each."""
    from training.tasks import get_task

    families = list(dict.fromkeys(s.split("/")[0] for s in task_selectors if s))
    examples = [p.prompt for f in families
                for p in get_task(f).generate(EXAMPLE_SEED, EXAMPLES_PER_FAMILY)]
    return {"task_families": families, "description": description, "examples": examples}
