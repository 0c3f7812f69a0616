"""training.swarm_router's bookkeeping on hand-made measurements: a prompt's mean token
log-probability, and the held-out report (the learned router against each model alone, the
per-family oracle and likelihood routing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from training.components.swarm_router_fit import fit_router
from training.swarm_router import evaluate, mean_logprob


def test_the_prompt_mean_logprob_reads_each_token_after_the_first():
    steps = [None, {7: SimpleNamespace(logprob=-1.0)}, {8: SimpleNamespace(logprob=-3.0),
                                                       9: SimpleNamespace(logprob=-0.1)}]
    assert mean_logprob([5, 7, 8], steps) == pytest.approx(-2.0)  # token 8's, not the top 9's
    assert mean_logprob([5], [None]) == 0.0


def rows() -> list[dict]:
    out = []
    for i in range(20):
        arithmetic = i % 2 == 0
        out.append({"question": f"Compute: {i}+{i}*3" if arithmetic else f"Physics: v={i} m/s",
                    "task": "arithmetic" if arithmetic else "physics",
                    "solved": {"base": arithmetic and i % 4 == 0, "arithmetic": arithmetic,
                               "physics": not arithmetic},
                    # the physics model finds every question likeliest
                    "loglik": {"base": -2.0, "arithmetic": -1.5 if arithmetic else -2.5,
                               "physics": -1.0}})
    return out


def test_the_report_sets_the_learned_router_beside_the_oracle_and_likelihood():
    data = rows()
    router = fit_router([r["question"] for r in data],
                        {m: [r["solved"][m] for r in data] for m in ("base", "arithmetic",
                                                                     "physics")},
                        (1, 2, 3), 256, steps=300)
    report = evaluate(router, data, {"arithmetic": "arithmetic", "physics": "physics"})
    assert report["learned"] == report["oracle_by_family"] == report["best_per_question"] == 1.0
    assert report["alone"] == {"base": 0.25, "arithmetic": 0.5, "physics": 0.5}
    assert report["likelihood"] == 0.5  # all to physics: right on the physics half only
    assert report["likelihood_routed_to"] == {"base": 0, "arithmetic": 0, "physics": 20}
    # labels measured before likelihood was: no likelihood figure, the rest as before
    for r in data:
        del r["loglik"]
    assert "likelihood" not in evaluate(router, data, {})
