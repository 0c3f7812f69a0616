"""benchmarks.studies.auto_limits: the routings auto could use, evaluated on per-problem
outcomes."""

import argparse

from benchmarks.studies.auto_limits import CAPS, Row, cascade, cheapest, oracles, report


def row(task: str, d: float, greedy: tuple[bool, int], prm: float,
        mcts: tuple[bool, int], capped: tuple[bool, int] | None = None) -> Row:
    return Row(task=task, difficulty=d, greedy=greedy, prm=prm,
               mcts={cap: mcts if cap is None else capped or mcts for cap in CAPS})


# An easy arithmetic problem greedy solves (mcts does too, dearly), a hard one nothing solves, and
# a countdown problem only mcts solves, for 300 tokens (100 with any cap, and then wrongly).
ROWS = [row("arithmetic", 0.1, (True, 10), 0.9, (True, 200)),
        row("arithmetic", 0.4, (False, 20), 1e-5, (False, 300)),
        row("countdown", 0.9, (False, 10), 1e-7, (True, 300), capped=(False, 100))]


def test_the_oracles_pick_per_task_and_per_problem():
    by_name = {r.name: r for r in oracles(ROWS)}
    assert (by_name["always mcts"].accuracy, by_name["always mcts"].tokens) == (2 / 3, 800 / 3)
    assert by_name["always greedy"].accuracy == 1 / 3
    # task oracle: greedy on both arithmetic problems, mcts on countdown
    assert (by_name["task oracle"].accuracy, by_name["task oracle"].tokens) == (2 / 3, 330 / 3)
    # instance oracle: greedy where it is right, mcts elsewhere
    assert by_name["instance oracle"].tokens == (10 + 300 + 300) / 3


def test_the_cascade_escalates_only_low_scoring_greedy_answers_above_the_escalation_difficulty():
    # d >= 0.8 searches; below it greedy stands unless d >= 0.3 and the PRM is below 1e-3
    routed = cascade(ROWS, high=0.8, escalate=0.3, accept=1e-3, cap=None)
    assert routed.accuracy == 2 / 3
    assert routed.tokens == (10 + (20 + 300) + 300) / 3
    capped = cascade(ROWS, high=0.8, escalate=1.01, accept=1e-3, cap=400)
    assert (capped.accuracy, capped.tokens) == (1 / 3, (10 + 20 + 100) / 3)


def test_the_cheapest_member_keeps_the_accuracy_and_the_report_states_the_ratios():
    best = cheapest(ROWS, floor=2 / 3)
    # greedy on arithmetic (no escalation pays) and uncapped mcts on countdown
    assert (best.accuracy, best.tokens) == (2 / 3, (10 + 20 + 300) / 3)
    assert cheapest(ROWS, floor=1.0) is None
    args = argparse.Namespace(per_level=1, countdown=1, seed=800_000)
    text, data = report(ROWS, args, 60.0)
    assert "| task oracle | 66.7% | 110 | 1.000 | 0.412 |" in text
    assert "spends 0.412x its tokens" in text
    assert data["routings"][-1]["tokens"] == best.tokens
