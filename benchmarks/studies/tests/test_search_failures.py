"""benchmarks.studies.search_failures: telling a search that never found the answer from one that
found it and chose another."""

import argparse

from benchmarks.studies.search_failures import classify, finished_paths, report, summary
from training.tasks import from_prompt

COUNTDOWN = from_prompt("Numbers: 3 7 25 50 Target: 353")
RIGHT = ["50*7=350", "350+3=353", "Answer: 353"]
WRONG = ["50*7=350", "350+25=375", "Answer: 375"]


def trace(*paths: list[str], unfinished: tuple[list[str], ...] = ()) -> list[dict]:
    """A search trace holding each path as its own branch under the root; the `unfinished`
    branches end without the model finishing them."""
    nodes = [{"id": 0, "parent": None, "text": "", "final": False}]
    for steps, finished in [(p, True) for p in paths] + [(p, False) for p in unfinished]:
        parent = 0
        for i, step in enumerate(steps):
            nodes.append({"id": len(nodes), "parent": parent, "text": step,
                          "final": finished and i == len(steps) - 1})
            parent = nodes[-1]["id"]
    return nodes


def test_finished_paths_are_rebuilt_from_the_trace_and_open_branches_are_left_out():
    nodes = trace(RIGHT, WRONG, unfinished=(["3+7=10"],))
    assert finished_paths(nodes) == ["\n".join(RIGHT), "\n".join(WRONG)]


def test_a_right_path_passed_over_is_a_selection_failure_and_none_found_a_search_failure():
    assert classify(COUNTDOWN, "\n".join(RIGHT), trace(RIGHT, WRONG)) == ("solved", 2)
    assert classify(COUNTDOWN, "\n".join(WRONG), trace(WRONG, RIGHT)) == ("selection", 2)
    assert classify(COUNTDOWN, "\n".join(WRONG), trace(WRONG)) == ("search", 1)
    # an unfinished right branch is not a right solution found
    assert classify(COUNTDOWN, "\n".join(WRONG), trace(WRONG, unfinished=(RIGHT,))) == ("search", 1)


def test_the_report_counts_each_kind_and_what_a_perfect_judge_would_reach():
    row = summary("mcts/5", "learned", "countdown",
                  [("solved", 10), ("selection", 4), ("search", 12), ("search", 14)])
    assert (row["n"], row["solved"], row["selection"], row["search"]) == (4, 1, 1, 2)
    assert row["finished_paths"] == 10.0
    args = argparse.Namespace(per_level=30, countdown=120, seed=900_000)
    text = report([row], args, 60.0)
    assert "| mcts/5 | learned | countdown | 4 | 25.0% | 1 | 2 | 50.0% | 10.0 |" in text
