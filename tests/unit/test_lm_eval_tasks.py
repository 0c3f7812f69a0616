"""benchmarks.eval_harness: the lm-eval demo tasks and the data generated for them."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from benchmarks.eval_harness import TASKS, rows, wrong_solutions
from training.tasks import get_task


@pytest.mark.parametrize("task", ["arithmetic", "countdown"])
def test_the_lm_eval_rows_hold_one_right_solution_among_wrong_ones(task):
    module = get_task(task)
    problems = module.generate(9_000_123, 20)
    for row, problem in zip(rows(problems, 1), problems):
        assert len(row["choices"]) == 4 == len(set(row["choices"]))
        verdicts = [module.check(problem, c) for c in row["choices"]]
        assert verdicts.index(True) == row["label"] and verdicts.count(True) == 1


def test_a_wrong_solution_carries_its_error_into_the_answer():
    wrong = wrong_solutions("2*3=6\n6+1=7\nAnswer: 7", random.Random(0), 3)
    for text in wrong:
        lines = text.split("\n")
        assert lines[0] == "2*3=6" and lines[1].startswith("6+1=")
        assert lines[2] == f"Answer: {lines[1].split('=')[1]}" != "Answer: 7"


def test_the_committed_lm_eval_tasks_read_the_committed_data():
    for path in TASKS.glob("demo_*.yaml"):
        text = path.read_text().replace("!function", "")  # lm-eval's tag, not plain YAML
        config = yaml.safe_load(text)
        assert config["task"] == path.stem
    for task in ("arithmetic", "countdown"):
        lines = (TASKS / "data" / f"{task}.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        assert len(lines) == 80 and first["prompt"].startswith(
            "Compute:" if task == "arithmetic" else "Numbers:")


def test_the_report_reads_each_tasks_metric_and_request_type():
    import argparse

    from benchmarks.eval_harness import report, score_of

    assert score_of({"exact_match,answer": 0.5, "exact_match_stderr,answer": "N/A"}) == (
        "exact_match", 0.5)
    assert score_of({"acc,none": 0.75}) == ("acc", 0.75)
    with pytest.raises(KeyError):
        score_of({"f1,none": 1.0})
    runs = [{"model": "local-completions", "tasks": ["demo_arithmetic", "demo_arithmetic_mc"],
             "wall_s": 3.0, "gen_kwargs": None,
             "results": {"demo_arithmetic": {"exact_match,answer": 0.5},
                         "demo_arithmetic_mc": {"acc,none": 0.75}}}]
    text = report(runs, argparse.Namespace(limit=None), 60.0, {"arithmetic": 80, "countdown": 80})
    assert "| local-completions | demo_arithmetic | generate_until | exact_match | 0.500 |" in text
    assert "| local-completions | demo_arithmetic_mc | loglikelihood | acc | 0.750 |" in text
