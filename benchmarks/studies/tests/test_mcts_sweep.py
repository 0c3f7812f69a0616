"""benchmarks.studies.mcts_sweep: each configuration summarised by bucket and against the first."""

import argparse

from benchmarks.harness.chat import Outcome
from benchmarks.studies.mcts_sweep import GRID, report, summary
from server.settings import Settings


def outcome(config, verifiers, bucket, correct, tokens, busy=0.9):
    return Outcome(config=config, verifiers=verifiers, problem="p", task="t", bucket=bucket,
                   correct=correct, strategy=config.split("/")[0], difficulty=None,
                   difficulty_estimator=None, completion_tokens=tokens,
                   reasoning_tokens=tokens // 2, engine_calls=3,
                   nodes=5, time_s=1.0, busy_s=busy, latency_s=1.0)


def test_mcts_sweep_summarises_each_configuration_by_bucket_and_against_the_first_row():
    def row(bucket, correct, tokens):
        o = outcome("mcts", "learned", bucket, correct, tokens)
        return o.__class__(**{**o.__dict__, "task": "countdown" if bucket == "countdown"
                              else "arithmetic"})

    rows = [row("countdown", True, 300), row("countdown", False, 900), row("arith 6-8", True, 90),
            row("arith 1-2", False, 30)]
    first = summary(3, 12, rows, {"wall_s": 1.0})
    assert (first["all"], first["hard"], first["countdown"]) == (0.5, 0.6667, 0.5)
    assert (first["tokens"], first["countdown_tokens"]) == (330.0, 600.0)
    cheaper = {**first, "n_candidates": 2, "tokens": 165.0}
    args = argparse.Namespace(per_level=1, countdown=2, seed=800_000)
    text = report([first, cheaper], args, 4, 60.0)
    assert "| 3 | 12 | 50.0% | 66.7% | 50.0% | 330 | 600 | 3.0 | 1.00x |" in text
    assert text.rstrip().endswith("| 0.50x |")
    # the grid holds the previous default first and the server's current one
    assert GRID[0] == (3, 12) and (2, Settings().mcts_simulations) in GRID
