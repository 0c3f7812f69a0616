"""Self-MoA (Li et al. 2025, arXiv 2502.00674): samples of one strong model, or of several,
aggregated into one answer. Here the aggregation is the verifiers' weighted vote: each model's
samples are first voted among themselves (best_of_n with `selection="weighted_vote"` returns
its distinct answers, each scored), then every answer's scores are summed across models and
the answer with the highest sum wins, represented by its best-scored solution."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from search.answers import answer_key
from search.problem import SearchResult, SearchStats

STATS = ("nodes", "engine_calls", "generated_tokens", "busy_s")


def aggregate(results: Sequence[SearchResult], extractor: str = "auto") -> SearchResult:
    """One result from several runs on the same problem: the winning answer first, then the
    rest by their summed score; the stats of all (wall time: the longest, they run together)."""
    if not results:
        raise ValueError("Self-MoA needs at least one run's answers")
    votes: dict[str, float] = {}
    best: dict[str, tuple[float, object]] = {}
    for result in results:
        for answer in result.answers:
            key = answer_key(answer.text, extractor)
            votes[key] = votes.get(key, 0.0) + answer.score
            if key not in best or answer.score > best[key][0]:
                best[key] = (answer.score, answer)
    ranked = sorted(votes, key=lambda k: (votes[k], best[k][0]), reverse=True)
    stats = SearchStats(wall_s=max(r.stats.wall_s for r in results))
    for name in STATS:
        setattr(stats, name, sum(getattr(r.stats, name) for r in results))
    total = sum(votes.values()) or 1.0
    answers = [dataclasses.replace(best[k][1], signals={**best[k][1].signals,
                                                        "agreement": votes[k] / total})
               for k in ranked]
    errors = {k: v for r in results for k, v in r.verifier_errors.items()}
    return SearchResult(answers=answers, stats=stats, verifier_errors=errors,
                        details={"self_moa": {"votes": {k: round(v, 4) for k, v in
                                                        sorted(votes.items(),
                                                               key=lambda kv: -kv[1])}}})
