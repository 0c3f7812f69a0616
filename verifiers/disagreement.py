"""Do the learned verifiers and the exact ones agree on a solution? A serving-time guard against
reward hacking: a search picks the answer its verifiers like best, and where a learned reward
model likes an answer that an exact check rejects (or the reverse), the answer's score means less
than it says.

A verifier says which kind it is with an `exact` attribute: True for an exact check (`logic`,
`syntax`), False for a learned model (`prm`, `orm`); a verifier without one is not compared.
Each kind's verdict on a path is its most sceptical verifier's path score (the lowest), and the
two kinds disagree strongly when their verdicts are at least `threshold` apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Direction = Literal["learned_higher", "exact_higher"]


def verifier_kind(verifier: object) -> str | None:
    """'exact', 'learned', or None for a verifier that does not say."""
    exact = getattr(verifier, "exact", None)
    if not isinstance(exact, bool):
        return None
    return "exact" if exact else "learned"


def disagreement(path_scores: Mapping[str, float], kinds: Mapping[str, str | None],
                 threshold: float) -> dict | None:
    """The disagreement report of one path, or None when the kinds agree (or one is missing).

    `path_scores`: each verifier's score of the whole path; `kinds`: `verifier_kind` of each."""
    learned = {n: s for n, s in path_scores.items() if kinds.get(n) == "learned"}
    exact = {n: s for n, s in path_scores.items() if kinds.get(n) == "exact"}
    if not learned or not exact:
        return None
    gap = min(learned.values()) - min(exact.values())
    if abs(gap) < threshold:
        return None
    direction: Direction = "learned_higher" if gap > 0 else "exact_higher"
    return {"learned": dict(sorted(learned.items())), "exact": dict(sorted(exact.items())),
            "gap": round(gap, 6), "direction": direction, "threshold": threshold}
