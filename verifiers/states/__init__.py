"""Carry-over states for bounded-context reasoning (search.chunking's `carry="state"`): a
plugin derives, from the question and the path written so far, the question that remains,
which the next chunk starts from instead of the whole path.

Plugins come from the `deliberate.states` entry-point group (the built-ins are registered the
same way): each names a function `(question, text so far) -> next question | None`. None means
"no state here" (not this plugin's task, or a step it cannot follow), and the chunk carries the
last tokens instead. A plugin that fails to load is logged and skipped; one that raises while a
request runs counts as None for that chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deliberate.states"
StateFn = Callable[[str, str], "str | None"]


def discover() -> dict[str, StateFn]:
    """The built-ins, then the group's plugins (the built-ins are in the group too once the
    package is installed)."""
    from verifiers.states.arithmetic import remaining

    states: dict[str, StateFn] = {"arithmetic": remaining}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            states[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin is skipped, not fatal
            logger.warning("carry-over state %r failed to load (%s: %s); skipped", ep.name,
                           type(exc).__name__, exc)
    return states


def guarded(name: str, state: StateFn) -> StateFn:
    """`state`, with an exception logged and read as "no state" (the request goes on)."""

    def safe(question: str, text: str) -> str | None:
        try:
            return state(question, text)
        except Exception as exc:
            logger.warning("carry-over state %r failed (%s: %s); carrying the last tokens",
                           name, type(exc).__name__, exc)
            return None

    return safe
