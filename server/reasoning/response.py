"""The response's `reasoning` object and the usage of a routed request."""

from __future__ import annotations

from search.problem import SearchResult
from server.openai.protocol import Usage, usage
from server.reasoning.service import Decision

STRATEGY_HEADER = "x-reasoning-strategy"


def reasoning_object(decision: Decision, result: SearchResult | None = None) -> dict:
    body: dict = {"strategy": decision.strategy, "difficulty": decision.difficulty,
                  "difficulty_estimator": decision.estimator}
    if decision.stages is not None:
        body["stages"] = decision.stages
    if decision.confidence is not None:
        body["confidence"] = decision.confidence
        if decision.options.abstain_below is not None:
            body["abstained"] = decision.abstained
    if result is None:
        return body
    best, stats = result.best, result.stats
    body.update({
        "score": best.score,
        "verifier_scores": best.verifier_scores,
        "steps": [{"text": text, "score": score, "scores": scores}
                  for text, score, scores in zip(best.steps, best.step_scores,
                                                 best.step_verifier_scores)],
        "aggregation": decision.options.aggregation,
        "combine": decision.options.combine,
        "nodes": stats.nodes,
        "engine_calls": stats.engine_calls,
        "time_s": round(stats.wall_s, 4),
        "engine_busy_s": round(stats.busy_s, 4),
        "stopped_by": stats.stopped_by,
        "verifier_errors": result.verifier_errors,
        "verifier_disagreement": result.verifier_disagreement,
    })
    if result.trace is not None:
        body["trace"] = result.trace
        body["answer_nodes"] = result.answer_nodes  # where each answer's path ends in it
    body.update(result.details)
    return body


def search_usage(prompt_tokens: int, decision: Decision, result: SearchResult) -> Usage:
    """completion_tokens: everything generated (search and probe); reasoning_tokens: what is
    not in the returned answers."""
    generated = result.stats.generated_tokens + decision.probe_tokens
    answers = sum(a.tokens for a in result.answers)
    return usage(prompt_tokens, generated, max(generated - answers, 0))


def plain_usage(prompt_tokens: int, completion_tokens: int, decision: Decision) -> Usage:
    """A single pass: only a difficulty probe's tokens were spent reasoning."""
    return usage(prompt_tokens, completion_tokens + decision.probe_tokens, decision.probe_tokens)
